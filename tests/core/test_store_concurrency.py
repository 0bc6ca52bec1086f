"""Two programs on one project: every write waits for the other's lock, imports stay invisible
until whole, and what a killed import wrote is removed."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project, batches, bulk, migrations
from annotune.core.store.failures import ProjectBusyError
from annotune.core.tasks import TaskSettings

LABELS = ("neg", "pos")
HOLD_S = 0.6


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "p.annotune", task="text-classification",
                        settings=TaskSettings(labels=LABELS)) as opened:
        opened.add_examples(records([f"text {i}" for i in range(20)]))
        yield opened


def records(texts: list[str], start: int = 1) -> list[ImportRecord]:
    return [ImportRecord(fields={"text": t}, line=i) for i, t in enumerate(texts, start)]


@contextlib.contextmanager
def another_writer(path: Path, hold_s: float = HOLD_S) -> Iterator[None]:
    """Let another process hold the project's write lock (it saves a label) for ``hold_s``."""
    script = textwrap.dedent(f"""
        import sqlite3, sys, time
        db = sqlite3.connect({str(path)!r}, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE project SET value = value WHERE key = 'created'")
        print("locked", flush=True)
        time.sleep({hold_s})
        db.execute("COMMIT")
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        yield
    finally:
        child.wait(timeout=30)
        child.stdout.close()


def old_project(path: Path, monkeypatch: pytest.MonkeyPatch, version: int) -> None:
    """Write a project at schema ``version`` (plus the imports table today's code reads)."""
    first = migrations.MIGRATIONS[0]
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", [
            lambda db: (first(db), migrations._v5_import_batches(db)),
            *migrations.MIGRATIONS[1:version]])
        patch.setattr(migrations, "SCHEMA_VERSION", version)
        patch.setattr("annotune.core.store.integrity.check_counters", lambda db, path: None)
        with Project.create(path, task="text-classification",
                            settings=TaskSettings(labels=LABELS)) as created:
            with created.db.conn:
                created.db.conn.executemany(
                    "INSERT INTO examples (fields, text, hash) VALUES (?, ?, ?)",
                    [(f'{{"text":"old {i}"}}', f"old {i}", f"{i:064x}") for i in range(5)])


# Every write path of the store, each started while another process holds the write lock.
WRITES: dict[str, Callable[[Project], Any]] = {
    "small import": lambda p: p.add_examples(records(["new one", "new two"])),
    "large import": lambda p: p.add_examples(records([f"bulk {i}" for i in range(1500)])),
    "save": lambda p: p.save_annotation(1, {"label": "pos"}),
    "skip": lambda p: p.skip(2),
    "undo and redo": lambda p: (p.undo(), p.redo()),
    "splits": lambda p: p.set_splits({3: "test", 4: "train"}),
    "field edit": lambda p: p.update_fields(5, {"text": "edited text"}),
    "settings": lambda p: p.set_settings(p.settings.with_(labels=(*LABELS, "mixed"))),
    "predictions": lambda p: p.save_predictions("run-1", [(6, {"label": "pos"}, 0.7)]),
    "prediction page": lambda p: bulk.save_predictions(p.db, "bundle", [7, 8],
                                                       [{"label": "neg"}] * 2, [0.2, 0.4]),
    "runs": lambda p: p.finish_run(p.create_run({"epochs": 1}, "cpu"), "finished"),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_each_write_waits_for_another_programs_lock(project, name):
    project.save_annotation(9, {"label": "neg"})  # something for undo to walk back
    with another_writer(project.path):
        started = time.perf_counter()
        WRITES[name](project)  # read, then write: must wait, not fail with "locked"
        waited = time.perf_counter() - started
    assert waited >= HOLD_S * 0.5
    assert not project.db.conn.in_transaction


def test_opening_an_old_file_migrates_while_another_program_writes(tmp_path, monkeypatch):
    path = tmp_path / "old.annotune"
    old_project(path, monkeypatch, version=2)  # migration 3 reads the schema, then rebuilds
    with another_writer(path):
        with Project.open(path) as opened:
            assert opened.count() == 5
            versions = [r[0] for r in opened.db.execute("SELECT version FROM migrations")]
    assert versions == list(range(1, migrations.SCHEMA_VERSION + 1))


def test_two_programs_opening_an_old_file_at_once_migrate_it_once(tmp_path, monkeypatch):
    path = tmp_path / "old.annotune"
    old_project(path, monkeypatch, version=2)
    script = ("import sys; from annotune.core.store import Project; "
              f"Project.open({str(path)!r}).close(); print('ok')")
    children = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [child.communicate(timeout=60) for child in children]
    assert [out.strip() for out, _ in outputs] == ["ok"] * 3, outputs
    with Project.open(path) as opened:
        versions = [r[0] for r in opened.db.execute("SELECT version FROM migrations")]
        assert versions == list(range(1, migrations.SCHEMA_VERSION + 1))
        assert opened.count() == 5


def test_a_write_that_cannot_get_the_lock_names_the_project(project, monkeypatch):
    monkeypatch.setattr("annotune.core.store.records.WRITE_WAIT_S", 0.2)
    with another_writer(project.path, hold_s=2.0):
        with pytest.raises(ProjectBusyError) as caught:
            project.save_annotation(1, {"label": "pos"})
    error = caught.value
    assert isinstance(error, AnnotuneError) and not isinstance(error, sqlite3.Error)
    assert error.where == str(project.path)
    assert "another program is writing to this project" in error.what
    assert "nothing was written" in error.hint
    assert project.annotation(1) is None
    project.save_annotation(1, {"label": "pos"})  # free again: it goes through


@pytest.fixture
def small_steps(monkeypatch):
    """Publish imports in steps of 500 rows, each written before the next chunk is read."""
    for name in ("FIRST_STEP_ROWS", "MIN_STEP_ROWS", "MAX_STEP_ROWS"):
        monkeypatch.setattr(bulk, name, 500)
    monkeypatch.setattr(bulk, "READ_AHEAD", 1)


def raw_count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT COUNT(*) FROM examples").fetchone()[0]


class PausedImport:
    """Run a large import on a thread (its own connection) that stops after ``pause_after``
    rows, once the steps before are committed."""

    def __init__(self, path: Path, total: int, pause_after: int, prefix: str = "late"):
        self.go_on, self.paused = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.summary: Any = None

        def rows() -> Iterator[ImportRecord]:
            for i in range(total):
                if i == pause_after:
                    self.paused.set()
                    self.go_on.wait(30)
                yield ImportRecord(fields={"text": f"{prefix} {i} 🍕 Jose\u0301"}, line=i + 1,
                                   annotation={"label": LABELS[i % 2]})

        def run() -> None:
            try:
                with Project.open(path) as importer:
                    self.summary = importer.add_examples(rows(), source="late.jsonl")
            except BaseException as error:  # handed to the test
                self.error = error
            finally:
                self.paused.set()

        self.thread = threading.Thread(target=run)
        self.thread.start()
        assert self.paused.wait(30)
        deadline = time.monotonic() + 30
        while raw_count(path) < pause_after - 1000 and time.monotonic() < deadline:
            time.sleep(0.01)

    def finish(self) -> Any:
        self.go_on.set()
        self.thread.join(60)
        if self.error is not None:
            raise self.error
        return self.summary


def visible_everywhere(project: Project) -> dict[str, Any]:
    """What every reader of the store says about the project."""
    stats = project.stats()
    return {"count": project.count(), "unlabeled": project.count(status="unlabeled"),
            "accepted": project.count(status="accepted"),
            "filtered": project.count(split=None, search="late"),
            "examples": len(project.examples(limit=10_000)),
            "search": len(project.examples(search="late", limit=10_000)),
            "labeled": len(project.labeled()), "annotated": len(list(project.annotated())),
            "stats": (stats["examples"], stats["labels"], stats["splits"]),
            "page": len(bulk.fields_page(project.db, None, 10_000, unlabeled=False)[0]),
            "history": len(project.history(limit=10_000)),
            "last": project.examples(offset=0, limit=10_000)[-1].id}


def test_an_import_is_invisible_until_its_last_step(project, small_steps):
    project.save_annotation(1, {"label": "pos"})
    before = visible_everywhere(project)
    paused = PausedImport(project.path, total=3000, pause_after=2500)
    try:
        pending = project.db.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
        assert pending > 20  # steps are committed ...
        assert visible_everywhere(project) == before  # ... but no reader sees them
        with pytest.raises(AnnotuneError, match="no example"):
            project.example(21)
        assert project.next_example(after_id=20).id == 2  # wraps around, not into the batch
        project.save_annotation(2, {"label": "neg"})  # other work goes on meanwhile
    finally:
        summary = paused.finish()
    assert (summary.added, summary.annotated) == (3000, 3000)
    assert summary.steps > 3
    after = visible_everywhere(project)
    assert after["count"] == 3020 and after["accepted"] == 3002
    assert after["search"] == 3000 and after["labeled"] == 3002
    assert project.example(21).fields == {"text": "late 0 🍕 Jose\u0301"}
    assert project.db.execute("SELECT COUNT(*) FROM imports").fetchone()[0] == 0
    assert project.add_examples(records(["late 5 🍕 Jose\u0301"])).duplicates == 1


def test_a_second_import_is_refused_while_one_is_published(project, small_steps):
    paused = PausedImport(project.path, total=3000, pause_after=2000)
    try:
        for rows in (["one more"], [f"many {i}" for i in range(1200)]):
            with pytest.raises(batches.ImportRunningError, match="is still running") as caught:
                project.add_examples(records(rows))
            assert "wait until it finishes" in caught.value.hint
    finally:
        paused.finish()
    assert project.count() == 3020
    project.add_examples(records(["one more"]))
    assert project.count() == 3021


def test_duplicates_against_the_project_and_within_the_file_stay_exact(project, small_steps):
    texts = [f"text {i}" for i in range(20)] + [f"new {i % 1500}" for i in range(3000)]
    summary = project.add_examples(records(texts))
    assert (summary.added, summary.duplicates) == (1500, 1520)
    assert summary.duplicate_lines[:3] == [1, 2, 3]
    assert project.count() == 1520
    assert project.db.execute("SELECT COUNT(*) FROM example_hashes").fetchone()[0] == 1520


def test_a_field_edit_cannot_copy_a_text_an_import_is_adding(project, small_steps):
    paused = PausedImport(project.path, total=3000, pause_after=2500)
    try:
        with pytest.raises(AnnotuneError, match="an import in progress adds exactly"):
            project.update_fields(1, {"text": "late 7 🍕 Jose\u0301"})
    finally:
        paused.finish()
    assert project.example(1).fields == {"text": "text 0"}


def test_a_failed_import_removes_the_steps_it_committed(project, small_steps):

    def failing() -> Iterator[ImportRecord]:
        yield from records([f"row {i}" for i in range(3000)])
        raise AnnotuneError("bad row at the end", where="late.csv:3001")

    with pytest.raises(AnnotuneError, match="bad row at the end"):
        project.add_examples(failing())
    assert project.db.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 20
    assert project.db.execute("SELECT COUNT(*) FROM imports").fetchone()[0] == 0
    assert project.db.execute("SELECT COUNT(*) FROM examples_fts WHERE examples_fts "
                              "MATCH 'row'").fetchone()[0] == 0
    assert project.counters() == {"examples": 20, "accepted": 0, "skipped": 0}
    assert project.add_examples(records([f"row {i}" for i in range(3000)])).added == 3000


def test_what_a_killed_import_left_is_removed_on_open(project, monkeypatch, small_steps):
    """A batch whose importer is gone (here: a dead owner) is removed, nothing else."""
    project.save_annotation(3, {"label": "pos"})
    monkeypatch.setattr(batches, "finish", lambda *args: (_ for _ in ()).throw(
        KeyboardInterrupt()))  # the import dies right before its last step
    monkeypatch.setattr(batches, "remove", lambda *args: 0)  # ... and cleans nothing up
    with pytest.raises(KeyboardInterrupt):
        project.add_examples(records([f"row {i}" for i in range(3000)]))
    monkeypatch.undo()
    raw = project.db.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
    assert raw == 3020 and project.count() == 20  # written, never visible
    with Project.open(project.path) as reopened:
        assert reopened.db.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 20
        assert reopened.db.execute("SELECT COUNT(*) FROM example_hashes").fetchone()[0] == 20
        assert reopened.db.execute("SELECT COUNT(*) FROM annotation_history "
                                   "WHERE action = 'import'").fetchone()[0] == 0
        assert reopened.db.execute("SELECT COUNT(*) FROM examples_fts WHERE examples_fts "
                                   "MATCH 'row'").fetchone()[0] == 0
        assert reopened.annotation(3).payload == {"label": "pos"}
        assert reopened.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert reopened.add_examples(records([f"row {i}" for i in range(3000)])).added == 3000


def test_a_batch_of_a_live_process_is_left_alone(project):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = batches.owner_name().split("|")
        owner[1] = str(other.pid)
        owner[3] = batches._start_time(other.pid) or ""
        project.db.execute("INSERT INTO imports (first_id, source, owner, started_at, "
                           "heartbeat) VALUES (21, 'x', ?, 'now', ?)",
                           ["|".join(owner), time.time()])
        assert [row["alive"] for row in batches.unfinished(project.db)] == [True]
        assert batches.clean_up(project.db) == 0
        with pytest.raises(batches.ImportRunningError, match=f"process {other.pid}"):
            project.add_examples(records(["blocked"]))
    finally:
        other.kill()
        other.wait()
    assert [row["alive"] for row in batches.unfinished(project.db)] == [False]
    project.add_examples(records(["goes through now"]))
    assert project.count() == 21
