"""Kept counters: the common counts stay equal to a real COUNT(*) through every kind of write."""

from __future__ import annotations

import json
import sqlite3

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project, bulk, integrity, migrations
from annotune.core.store.records import content_hash, dumps, fields_json
from annotune.core.tasks import TaskSettings

LABELS = ("neg", "pos")


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "p.annotune", task="text-classification",
                        settings=TaskSettings(labels=LABELS)) as opened:
        yield opened


def real_counts(project: Project) -> dict[str, int]:
    """Count by scanning, the way the counters must agree with."""
    db = project.db
    total = db.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
    accepted, skipped = (db.execute("SELECT COUNT(*) FROM annotations WHERE status = ?",
                                    [s]).fetchone()[0] for s in ("accepted", "skipped"))
    return {"all": total, "accepted": accepted, "skipped": skipped,
            "unlabeled": total - accepted - skipped}


def kept_counts(project: Project) -> dict[str, int]:
    return {"all": project.count(), "accepted": project.count(status="accepted"),
            "skipped": project.count(status="skipped"),
            "unlabeled": project.count(status="unlabeled")}


def check(project: Project, **expected: int) -> None:
    assert kept_counts(project) == real_counts(project)
    assert {k: kept_counts(project)[k] for k in expected} == expected


def records(texts, annotations=None):
    annotations = annotations or [None] * len(texts)
    return [ImportRecord(fields={"text": t}, annotation=a, line=i + 1)
            for i, (t, a) in enumerate(zip(texts, annotations, strict=True))]


def test_counters_follow_save_skip_undo_redo_and_relabel(project):
    project.add_examples(records(["a", "b", "c", "d"], [{"label": "pos"}, None, None, None]))
    check(project, all=4, accepted=1, skipped=0, unlabeled=3)
    project.save_annotation(2, {"label": "neg"})
    check(project, accepted=2, unlabeled=2)
    project.save_annotation(2, {"label": "pos"})  # re-annotation: still one accepted
    check(project, accepted=2, unlabeled=2)
    project.skip(2)  # accepted -> skipped
    check(project, accepted=1, skipped=1, unlabeled=2)
    project.skip(3)
    check(project, accepted=1, skipped=2, unlabeled=1)
    assert project.undo() == 3  # skipped -> unlabeled
    check(project, accepted=1, skipped=1, unlabeled=2)
    assert project.undo() == 2  # skipped -> accepted
    check(project, accepted=2, skipped=0, unlabeled=2)
    assert project.undo() == 2  # the relabel: still accepted
    assert project.undo() == 2  # first save undone: unlabeled
    check(project, accepted=1, skipped=0, unlabeled=3)
    assert project.redo() == 2
    check(project, accepted=2, unlabeled=2)
    project.save_annotation(1, {"label": "neg"})  # the imported annotation, relabeled
    check(project, accepted=2, unlabeled=2)
    stats = project.stats()
    assert (stats["examples"], stats["accepted"], stats["skipped"], stats["unlabeled"]) == \
        (4, 2, 0, 2)


def test_counters_follow_small_and_bulk_imports(project):
    assert bulk.BULK_FROM <= 1500  # the second import below takes the bulk path
    project.add_examples(records(["x", "y"], [{"label": "neg"}, None]))
    check(project, all=2, accepted=1)
    texts = [f"text {i}" for i in range(1500)]
    summary = project.add_examples(records(["x", *texts],
                                           [None, *[{"label": "pos"}] * 700, *[None] * 800]))
    assert (summary.added, summary.duplicates, summary.annotated) == (1500, 1, 700)
    check(project, all=1502, accepted=701, unlabeled=801)
    # The triggers are back after a bulk import: single writes keep counting.
    project.add_examples(records(["late"]))
    project.skip(1503)
    check(project, all=1503, accepted=701, skipped=1, unlabeled=801)
    names = {row[0] for row in project.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert set(bulk.ROW_TRIGGERS) <= names
    # The hash index, rebuilt after the bulk insert, still refuses a second copy.
    assert project.add_examples(records(["text 7"])).duplicates == 1
    with pytest.raises(sqlite3.IntegrityError):
        project.db.execute("INSERT INTO examples (fields, text, hash) SELECT fields, text, hash "
                           "FROM examples WHERE id = 5")
    assert project.examples(search="late")[0].id == 1503
    assert [e.id for e in project.examples(search="1499")] == [1502]
    history = project.history(example_id=3)
    assert [(h["action"], h["new"], h["who"]) for h in history] == \
        [("import", {"label": "pos"}, "import")]


def test_bulk_import_of_many_distinct_annotations(project):
    """Payloads too varied for one statement (spans, answers) are written row by row."""
    texts = [f"text {i}" for i in range(1200)]
    annotations = [None if i % 3 == 0 else {"label": f"l{i}"} for i in range(1200)]
    summary = project.add_examples(records(texts, annotations))
    assert summary.annotated == 800
    check(project, all=1200, accepted=800, unlabeled=400)
    assert project.annotation(3).payload == {"label": "l2"}
    assert project.annotation(4) is None
    assert [h["new"] for h in project.history(example_id=1200)] == [{"label": "l1199"}]


def test_bulk_import_keeps_each_row_its_label(project):
    texts = [f"text {i}" for i in range(1200)]
    annotations = [None if i % 5 == 0 else {"label": LABELS[i % 2]} for i in range(1200)]
    project.add_examples(records(texts, annotations))
    for example_id in (1, 2, 3, 6, 1199, 1200):
        stored = project.annotation(example_id)
        expected = annotations[example_id - 1]
        assert (stored.payload if stored else None) == expected
    check(project, all=1200, accepted=960, unlabeled=240)


def test_a_failed_bulk_import_leaves_counters_and_triggers(project):
    project.add_examples(records(["kept"]))

    def failing():
        yield from records([f"row {i}" for i in range(2000)])
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        project.add_examples(failing())
    big = records([f"row {i}" for i in range(2000)])
    big[-1].split = "holdout"
    with pytest.raises(AnnotuneError, match="unknown split"):
        project.add_examples(big)
    check(project, all=1, unlabeled=1)
    assert project.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # restored: FULL
    project.add_examples(records([f"row {i}" for i in range(2000)]))
    check(project, all=2001)


def test_bulk_import_restores_connection_settings(project):
    before = [project.db.execute(f"PRAGMA {p}").fetchone()[0]
              for p in ("synchronous", "cache_size", "foreign_keys")]
    project.add_examples(records([f"row {i}" for i in range(2000)]))
    after = [project.db.execute(f"PRAGMA {p}").fetchone()[0]
             for p in ("synchronous", "cache_size", "foreign_keys")]
    assert after == before


def test_migrations_2_and_3_upgrade_a_version_1_project(tmp_path, monkeypatch):
    """A file from before the counters gets them counted, and its hash index moved, on open."""
    path = tmp_path / "old.annotune"
    # Today's code writes the version-1 data: it needs the table of unfinished imports
    # (migration 5 creates it only if missing) and cannot check the counters v1 lacks.
    first = migrations.MIGRATIONS[0]
    monkeypatch.setattr(migrations, "MIGRATIONS",
                        [lambda db: (first(db), migrations._v5_import_batches(db))])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", 1)
    monkeypatch.setattr(integrity, "check_counters", lambda db, path: None)
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=LABELS)) as project:
        project.add_examples(records(["a good one", "b", "c", "d"],
                                     [{"label": "pos"}, None, None, None]))
        project.skip(2)
        project.save_annotation(3, {"label": "neg"})
        project.undo()
        project.save_predictions("run-1", [(4, {"label": "pos"}, 0.7)])
        assert project.db.execute("SELECT COUNT(*) FROM sqlite_master "
                                  "WHERE name = 'counters'").fetchone()[0] == 0
    monkeypatch.undo()
    with Project.open(path) as reopened:
        versions = [r[0] for r in reopened.db.execute("SELECT version FROM migrations")]
        assert versions == list(range(1, migrations.SCHEMA_VERSION + 1))
        check(reopened, all=4, accepted=1, skipped=1, unlabeled=2)
        # Nothing cascaded away when the examples table was rebuilt.
        assert reopened.annotation(1).payload == {"label": "pos"}
        assert reopened.annotation(2).status == "skipped"
        assert len(reopened.history()) == 4  # import, save, undo (+ the skip)
        assert reopened.prediction(4).score == 0.7
        assert reopened.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        table = reopened.db.execute("SELECT sql FROM sqlite_master "
                                    "WHERE name = 'examples'").fetchone()[0]
        assert "UNIQUE" not in table
        assert reopened.add_examples(records(["a good one"])).duplicates == 1
        with pytest.raises(sqlite3.IntegrityError):
            reopened.db.execute("INSERT INTO examples (fields, text, hash) VALUES (?, ?, ?)",
                                ['{"text":"b"}', "b", content_hash({"text": "b"})])
        # The rebuilt table kept its triggers: search and counters follow new rows.
        reopened.add_examples(records(["e fresh"]))
        assert [e.id for e in reopened.examples(search="fresh")] == [5]
        assert [e.id for e in reopened.examples(search="good")] == [1]
        reopened.save_annotation(5, {"label": "neg"})
        check(reopened, all=5, accepted=2, unlabeled=2)


def test_fields_json_is_dumps_exactly():
    for fields in ({"text": 'quote " back \\ tab \t nl \n é ☃ \u2028 \x01'},
                   {"text_pair": "b", "text": "a"}, {"question": "q?", "context": "c"}):
        assert fields_json(fields) == dumps(fields)
        assert json.loads(fields_json(fields)) == fields


def test_bulk_import_when_ids_run_out(project):
    """Past the largest id SQLite picks free ids at random; the import still lines up."""
    project.db.execute("INSERT INTO examples (id, fields, text, hash) VALUES (?, ?, ?, ?)",
                       [2**63 - 1, '{"text":"last"}', "last", content_hash({"text": "last"})])
    texts = [f"text {i}" for i in range(1200)]
    annotations = [{"label": LABELS[i % 2]} if i % 4 else None for i in range(1200)]
    summary = project.add_examples(records(texts, annotations))
    assert (summary.added, summary.annotated) == (1200, 900)
    found = project.examples(search="1001")
    assert [e.fields["text"] for e in found] == ["text 1001"]
    assert project.annotation(found[0].id).payload == {"label": "pos"}
    assert project.history(example_id=found[0].id)[0]["action"] == "import"
    assert project.db.execute("SELECT COUNT(*) FROM annotation_history").fetchone()[0] == 900
    check(project, all=1201, accepted=900)


def test_status_filters_agree_for_common_and_rare_statuses(project):
    project.add_examples(records([f"text {i}" for i in range(300)],
                                 [{"label": "pos"} if i < 200 else None for i in range(300)]))
    project.skip(250)
    project.skip(20)  # accepted -> skipped
    assert project._common("accepted") and not project._common("skipped")
    accepted = [i for i in range(1, 201) if i != 20]
    assert [e.id for e in project.examples(status="accepted", offset=150, limit=60)] == \
        accepted[150:210]
    assert [e.id for e in project.examples(status="skipped")] == [20, 250]
    assert project.examples(status="skipped", label="pos") == []
    assert project.next_example(after_id=20, status="skipped").id == 250
    assert project.next_example(after_id=250, status="skipped").id == 20  # wraps around
    assert project.next_example(after_id=200, status="accepted").id == 1
    assert project.next_example(after_id=19, status="accepted").id == 21
    assert project.next_example(after_id=300).id == 201
    for example_id in range(201, 301):
        if example_id != 250:
            project.save_annotation(example_id, {"label": "neg"})
    assert project.next_example() is None  # no unlabeled left: answered from the counters
    assert project.next_example(order="uncertainty") is None


def test_new_projects_use_large_pages(project):
    assert project.db.execute("PRAGMA page_size").fetchone()[0] == 16384


def test_fields_that_are_not_text_are_stored_as_text(project):
    project.add_examples([ImportRecord(fields={"text": 42}, line=1)])
    assert project.example(1).fields == {"text": "42"}
    assert project.add_examples([ImportRecord(fields={"text": "42"}, line=1)]).duplicates == 1
