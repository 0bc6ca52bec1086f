"""Project files: create/open, migrations, examples, queries, stats, runs and predictions."""

from __future__ import annotations

import sqlite3
from typing import Any, ClassVar

import pytest

from annotune.core import plugins
from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.hookspecs import hookimpl
from annotune.core.store import Example, Project, migrations
from annotune.core.tasks import Task, TaskSettings

LABELS = ("neg", "pos")


class FakeLabelTask(Task):
    """A minimal single-label task, so the store is tested without the real plugins."""

    name: ClassVar[str] = "fake-store-labels"
    title: ClassVar[str] = "Fake labels"
    annotation_kind: ClassVar[str] = "label"
    fields: ClassVar[tuple[str, ...]] = ("text",)
    auto_model: ClassVar[str] = "AutoModelForSequenceClassification"
    main_metric: ClassVar[str] = "accuracy"

    def validate(self, annotation: dict[str, Any], example: Any, settings: TaskSettings
                 ) -> dict[str, Any]:
        if annotation.get("label") not in settings.labels:
            raise AnnotuneError(f"unknown label {annotation.get('label')!r}",
                                hint=f"allowed labels: {', '.join(settings.labels)}")
        return {"label": annotation["label"]}


class FakePlugin:
    @staticmethod
    @hookimpl
    def register_tasks(register: Any) -> None:
        register(FakeLabelTask())


@pytest.fixture(scope="module")
def fake_registry() -> plugins.Registry:
    return plugins.build_registry(extra_plugins=(FakePlugin,))


@pytest.fixture(autouse=True)
def use_fake_registry(monkeypatch: pytest.MonkeyPatch, fake_registry: plugins.Registry) -> None:
    monkeypatch.setattr(plugins, "registry", lambda: fake_registry)


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "p.annotune", task=FakeLabelTask.name,
                        settings=TaskSettings(labels=LABELS)) as opened:
        yield opened


def records(texts, annotations=None, split=None):
    annotations = annotations or [None] * len(texts)
    return [ImportRecord(fields={"text": t}, annotation=a, split=split, line=i + 2)
            for i, (t, a) in enumerate(zip(texts, annotations, strict=True))]


# -- create / open -------------------------------------------------------------------------------
def test_create_then_open_keeps_settings_and_uses_wal(tmp_path):
    path = tmp_path / "reviews.annotune"
    settings = TaskSettings(labels=LABELS, max_length=64)
    Project.create(path, task=FakeLabelTask.name, settings=settings,
                   base_model="/models/bert").close()
    with Project.open(path) as project:
        assert project.task_name == FakeLabelTask.name
        assert project.settings == settings
        assert project.base_model == "/models/bert"
        assert project.runs_dir == tmp_path / "reviews-runs"
        assert project.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert project.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        versions = [r[0] for r in project.db.execute("SELECT version FROM migrations")]
        assert versions == list(range(1, migrations.SCHEMA_VERSION + 1))
    assert [p.name for p in tmp_path.iterdir()] == ["reviews.annotune"]  # no temp leftovers


def test_create_refuses_to_overwrite(tmp_path):
    path = tmp_path / "p.annotune"
    path.write_text("precious")
    with pytest.raises(AnnotuneError, match="already exists"):
        Project.create(path, task=FakeLabelTask.name, settings=TaskSettings(labels=LABELS))
    assert path.read_text() == "precious"


def test_create_refuses_unknown_task(tmp_path):
    with pytest.raises(AnnotuneError, match="unknown task 'nope'"):
        Project.create(tmp_path / "p.annotune", task="nope")
    assert not (tmp_path / "p.annotune").exists()


def test_open_missing_or_foreign_files(tmp_path):
    with pytest.raises(AnnotuneError, match="no project file"):
        Project.open(tmp_path / "missing.annotune")
    text = tmp_path / "notes.annotune"
    text.write_text("just some text, long enough to be read as a header")
    with pytest.raises(AnnotuneError, match="not an annotune project"):
        Project.open(text)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE things (x)")
    conn.commit()
    conn.close()
    with pytest.raises(AnnotuneError, match="SQLite file is not an annotune project"):
        Project.open(other)
    conn = sqlite3.connect(other)  # refusing must not have written anything
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["things"]
    conn.close()


def test_open_refuses_a_newer_schema(tmp_path, project):
    project.db.execute("INSERT INTO migrations (version, applied_at) VALUES (99, 'later')")
    with pytest.raises(AnnotuneError) as caught:
        Project.open(project.path)
    assert "schema version 99" in str(caught.value)
    assert "upgrade annotune" in str(caught.value)


def test_open_applies_missing_migrations_once(tmp_path, project, monkeypatch):
    project.close()
    calls = []

    def add_notes(db):
        calls.append(1)
        db.execute("ALTER TABLE examples ADD COLUMN note TEXT")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, add_notes])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(migrations.MIGRATIONS))
    Project.open(project.path).close()
    with Project.open(project.path) as reopened:
        columns = {c.name for c in reopened.db["examples"].columns}
        top = reopened.db.execute("SELECT MAX(version) FROM migrations").fetchone()[0]
    assert calls == [1]
    assert "note" in columns
    assert top == migrations.SCHEMA_VERSION


# -- examples ------------------------------------------------------------------------------------
def test_add_examples_counts_duplicates_and_annotations(project):
    batch = records(["a good film", "a bad film", "a good film", "fine"],
                    [{"label": "pos"}, None, None, {"label": "neg"}], split="train")
    batch[1].meta = {"format": "csv", "extra": {"stars": "1"}}
    batch[1].source_id = "row-7"
    summary = project.add_examples(batch, source="reviews.csv")
    assert (summary.added, summary.duplicates, summary.annotated) == (3, 1, 2)
    assert summary.duplicate_lines == [4]
    again = project.add_examples(records(["fine", "new one"]), source="more.csv")
    assert (again.added, again.duplicates, again.duplicate_lines) == (1, 1, [2])
    bad = project.example(2)
    assert bad == Example(id=2, fields={"text": "a bad film"}, split="train",
                          source="reviews.csv", line=3, source_id="row-7",
                          meta={"format": "csv", "extra": {"stars": "1"}})
    assert project.annotation(1).payload == {"label": "pos"}
    assert project.annotation(1).annotator == "import"
    assert project.annotation(2) is None
    with pytest.raises(AnnotuneError, match="no example 99"):
        project.example(99)


def test_add_examples_is_all_or_nothing(project):
    project.add_examples(records(["kept"]))

    def failing():
        yield from records(["one", "two"])
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        project.add_examples(failing())
    with pytest.raises(AnnotuneError, match="unknown split 'holdout'"):
        project.add_examples([*records(["three"]), *records(["four"], split="holdout")])
    reopened = Project.open(project.path)
    assert [e.fields["text"] for e in reopened.examples()] == ["kept"]
    assert reopened.db.execute("SELECT COUNT(*) FROM annotation_history").fetchone()[0] == 0
    reopened.close()


def test_search_finds_words_inside_unspaced_scripts(project):
    # the word index takes a run of CJK, kana, Thai or Hangul letters as one word: a word
    # inside such a run must still be found, alone, beside Latin words and in the counts
    project.add_examples(records(["这个产品很好 great", "东京は素晴らしい", "ร้านนี้อาหารอร่อยมาก",
                                  "학교에 갔어요", "a great day 🍕", "这个服务很差"]))
    assert [e.id for e in project.examples(search="产品")] == [1]
    assert [e.id for e in project.examples(search="很")] == [1, 6]
    assert [e.id for e in project.examples(search="素晴らしい")] == [2]
    assert [e.id for e in project.examples(search="อาหาร")] == [3]
    assert [e.id for e in project.examples(search="학교")] == [4]
    assert [e.id for e in project.examples(search="产品 great")] == [1]  # both, as for words
    assert [e.id for e in project.examples(search='"很差"')] == [6]
    assert [e.id for e in project.examples(search="great")] == [1, 5]
    assert project.count(search="这个") == 2
    assert project.examples(search="产品 day") == []


def test_update_fields_keeps_hash_and_search_current(project):
    project.add_examples(records(["a typo hre", "another text"]))
    edited = project.update_fields(1, {"text": "a typo here"})
    assert edited.fields == {"text": "a typo here"}
    assert [e.id for e in project.examples(search="here")] == [1]
    assert project.examples(search="hre") == []
    assert project.add_examples(records(["a typo here"])).duplicates == 1
    with pytest.raises(AnnotuneError, match="example 2 already has exactly these texts"):
        project.update_fields(1, {"text": "another text"})
    with pytest.raises(AnnotuneError, match="no field context"):
        project.update_fields(1, {"context": "x"})
    with pytest.raises(AnnotuneError, match="would be empty"):
        project.update_fields(1, {"text": "  "})
    assert project.example(1).fields == {"text": "a typo here"}


def test_filters_paging_and_search(project):
    texts = [f"review number {i} about {'cats' if i % 3 == 0 else 'dogs'}" for i in range(250)]
    project.add_examples(records(texts))
    project.add_examples([
        ImportRecord({"text": "multi"}, annotation={"labels": ["pos", "extra"]}, line=1),
        ImportRecord({"text": "spans"}, annotation={"spans": [
            {"start": 0, "end": 2, "label": "extra"}]}, line=2)])
    for example_id in range(1, 21):
        project.save_annotation(example_id, {"label": "pos" if example_id % 2 else "neg"})
    for example_id in range(21, 26):
        project.skip(example_id)
    project.set_splits({i: "validation" for i in range(1, 11)})

    assert project.count() == 252
    assert project.count(status="accepted") == 22
    assert project.count(status="skipped") == 5
    assert project.count(status="unlabeled") == 225
    assert project.count(label="pos") == 11  # 10 singles + the multi-label one
    assert project.count(label="extra") == 2  # multi-label list and NER span
    assert project.count(label="neg", split="validation") == 5
    assert project.count(status="unlabeled", search="cats") == len(
        [i for i in range(25, 250) if i % 3 == 0])
    assert project.count(search='cats" OR "dogs AND') == 0  # quoted, never FTS syntax

    page = project.examples(status="unlabeled", offset=200, limit=100)
    assert [e.id for e in page] == list(range(226, 251))
    assert [e.id for e in project.examples(label="pos", limit=3)] == [1, 3, 5]
    found = project.examples(search="number 42", limit=5)
    assert [e.id for e in found] == [43]
    with pytest.raises(AnnotuneError, match="unknown status filter"):
        project.count(status="done")
    assert project.stats()["labels"] == {"neg": 10, "pos": 11, "extra": 2}


def test_counts_stay_right_on_a_large_project(project):
    project.add_examples(ImportRecord({"text": f"text {i}"}, line=i) for i in range(20_000))
    project.save_annotation(19_999, {"label": "pos"})
    assert project.count() == 20_000
    assert project.count(status="unlabeled") == 19_999
    last_page = project.examples(status="unlabeled", offset=19_990, limit=50)
    assert [e.id for e in last_page] == [*range(19_991, 19_999), 20_000]
    assert project.next_example(after_id=19_998).id == 20_000
    # A large import fills the search index in bulk; later small imports go through the
    # trigger again.
    assert [e.id for e in project.examples(search="19998")] == [19_999]
    project.add_examples([ImportRecord({"text": "a late arrival"}, line=1)])
    assert [e.id for e in project.examples(search="late arrival")] == [20_001]
    assert project.count(search="text") == 20_000


def test_next_example_in_id_order_wraps_around(project):
    project.add_examples(records(["a", "b", "c", "d"]))
    project.save_annotation(2, {"label": "pos"})
    assert project.next_example().id == 1
    assert project.next_example(after_id=1).id == 3
    assert project.next_example(after_id=4).id == 1  # wraps to the first unlabeled
    assert project.next_example(after_id=1, status="accepted").id == 2
    for example_id in (1, 3, 4):
        project.skip(example_id)
    assert project.next_example() is None


def test_next_example_by_uncertainty(project):
    project.add_examples(records(["a", "b", "c", "d", "e"]))
    project.save_predictions("run-1", [(1, {"label": "pos"}, 0.9), (2, {"label": "neg"}, 0.55),
                                       (3, {"label": "pos"}, 0.7), (4, {"label": "pos"}, 0.6)])
    # A newer prediction from another source replaces the score used for ordering.
    project.save_predictions("bundle", [(1, {"label": "neg"}, 0.51)])
    order = []
    current = project.next_example(order="uncertainty")
    while current is not None and current.id not in order:
        order.append(current.id)
        current = project.next_example(after_id=current.id, order="uncertainty")
    assert order == [1, 2, 4, 3, 5]  # scores 0.51, 0.55, 0.6, 0.7, then unscored
    project.save_annotation(1, {"label": "neg"})
    assert project.next_example(order="uncertainty").id == 2
    with pytest.raises(AnnotuneError, match="unknown order"):
        project.next_example(order="random")


def test_labeled_set_splits_and_stats(project):
    project.add_examples(records(["a", "b", "c", "d"]))
    project.save_annotation(3, {"label": "pos"})
    project.save_annotation(1, {"label": "neg"})
    project.save_annotation(2, {"label": "pos"})
    project.skip(4)
    project.set_splits({1: "train", 2: "validation", 3: "train"})
    assert [(e.id, a) for e, a in project.labeled()] == [
        (1, {"label": "neg"}), (2, {"label": "pos"}), (3, {"label": "pos"})]
    assert [e.id for e, _ in project.labeled(split="train")] == [1, 3]
    with pytest.raises(AnnotuneError, match="no example 42"):
        project.set_splits({4: "test", 42: "train"})
    with pytest.raises(AnnotuneError, match="unknown split"):
        project.set_splits({4: "dev"})
    assert project.example(4).split is None  # both failed calls changed nothing
    assert project.stats() == {
        "examples": 4, "accepted": 3, "labeled": 3, "skipped": 1, "unlabeled": 0,
        "labels": {"neg": 1, "pos": 2}, "splits": {"unassigned": 1, "train": 2,
                                                    "validation": 1}}


# -- runs and predictions ------------------------------------------------------------------------
def test_runs_are_recorded_with_epochs(project, tmp_path):
    first = project.create_run({"epochs": 2, "learning_rate": 5e-5}, device="cuda:0")
    project.record_epoch(first, 1, {"f1": 0.5})
    project.record_epoch(first, 2, {"f1": 0.75})
    project.finish_run(first, "finished", metrics={"f1": 0.75}, artifact_dir=tmp_path / "run-1")
    second = project.create_run({"epochs": 1}, device="cpu")
    project.finish_run(second, "failed", error="CUDA out of memory")
    runs = project.runs()
    assert [r["id"] for r in runs] == [first, second]
    done = project.run(first)
    assert done["status"] == "finished" and done["device"] == "cuda:0"
    assert done["config"] == {"epochs": 2, "learning_rate": 5e-5}
    assert [e["metrics"]["f1"] for e in done["epochs"]] == [0.5, 0.75]
    assert done["artifact_dir"] == str(tmp_path / "run-1")
    assert done["duration_s"] >= 0
    assert runs[1]["error"] == "CUDA out of memory" and runs[1]["metrics"] is None
    with pytest.raises(AnnotuneError, match="no run 9"):
        project.record_epoch(9, 1, {})
    with pytest.raises(AnnotuneError, match="cannot finish with status 'running'"):
        project.finish_run(second, "running")


def test_predictions_keep_the_newest_per_source(project):
    project.add_examples(records(["a", "b"]))
    assert project.save_predictions(7, [(1, {"label": "pos"}, 0.8)]) == 1
    project.save_predictions(7, [(1, {"label": "neg"}, 0.6)])
    project.save_predictions("bundle-a", [(2, {"label": "pos"}, None)])
    newest = project.prediction(1)
    assert (newest.source, newest.payload, newest.score) == ("7", {"label": "neg"}, 0.6)
    assert project.db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 2
    assert project.prediction(2, source="bundle-a").score is None
    assert project.prediction(2, source="7") is None
    with pytest.raises(AnnotuneError, match="example 5"):
        project.save_predictions("bundle-a", [(2, {"label": "neg"}, 0.9),
                                              (5, {"label": "neg"}, 0.9)])
    assert project.prediction(2).payload == {"label": "pos"}  # the batch was rolled back


def test_scores_and_splits_leave_the_search_index_alone(project):
    """Only a change of the text re-indexes it (a prediction page updates thousands of scores)."""
    project.add_examples(records(["first review", "second review"]))
    trigger = project.db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                 "AND name = 'examples_au'").fetchone()[0]
    assert 'AFTER UPDATE OF "text" ON "examples"' in trigger

    def index_rows() -> int:  # FTS5 writes a new segment row for every re-index
        return project.db.execute("SELECT count(*) FROM examples_fts_data").fetchone()[0]

    before = index_rows()
    project.save_predictions("bundle:x", [(1, {"label": "pos"}, 0.9), (2, {"label": "neg"}, 0.6)])
    project.set_splits({1: "validation"})
    assert index_rows() == before
    project.update_fields(2, {"text": "second review, edited"})
    assert index_rows() > before
    assert [e.id for e in project.examples(search="edited")] == [2]


def test_labels_come_with_the_newest_prediction_of_each_example(project):
    project.add_examples(records(["red apples", "green apples", "blue sky", "grey sky"]))
    first, second = LABELS[0], LABELS[1]
    for example_id in (1, 2, 3):
        project.save_annotation(example_id, {"label": first})
    project.skip(4)
    project.save_predictions("run:1", [(1, {"label": second}, 0.6), (2, {"label": first}, 0.9),
                                       (4, {"label": first}, 0.7)])
    project.save_predictions("bundle:new", [(1, {"label": first}, 0.8)])  # newer: agrees now
    pairs = list(project.labeled_with_predictions())
    # example 3 has no prediction and example 4 is skipped: both left out
    assert pairs == [(1, {"label": first}, {"label": first}),
                     (2, {"label": first}, {"label": first})]
    assert [p[0] for p in project.labeled_with_predictions(search="green")] == [2]
    assert list(project.labeled_with_predictions(search="sky")) == []
