"""Kept counters: the common counts stay equal to a real COUNT(*) through every kind of write."""

from __future__ import annotations

import json
import sqlite3

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project, bulk, migrations
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
    assert project.examples(search="late")[0].id == 1503
    assert [e.id for e in project.examples(search="1499")] == [1502]
    history = project.history(example_id=3)
    assert [(h["action"], h["new"], h["who"]) for h in history] == \
        [("import", {"label": "pos"}, "import")]


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


def test_migration_2_counts_an_existing_project(tmp_path):
    """A file from before the counters gets them filled from its rows when opened."""
    path = tmp_path / "old.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=LABELS)) as project:
        project.add_examples(records(["a", "b", "c"], [{"label": "pos"}, None, None]))
        project.skip(2)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM migrations WHERE version = 2")
    for name in migrations.COUNTER_TRIGGERS:
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE counters")
    db.execute("INSERT INTO examples (fields, text, hash) VALUES (?, ?, ?)",
               ['{"text":"d"}', "d", content_hash({"text": "d"})])
    db.commit()
    db.close()
    with Project.open(path) as reopened:
        check(reopened, all=4, accepted=1, skipped=1, unlabeled=2)
        reopened.save_annotation(4, {"label": "neg"})
        check(reopened, accepted=2, unlabeled=1)


def test_fields_json_is_dumps_exactly():
    for fields in ({"text": 'quote " back \\ tab \t nl \n é ☃ \u2028 \x01'},
                   {"text_pair": "b", "text": "a"}, {"question": "q?", "context": "c"}):
        assert fields_json(fields) == dumps(fields)
        assert json.loads(fields_json(fields)) == fields
