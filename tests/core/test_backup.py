"""Checkpoints and backups: the write-ahead log folded into the file, copies made whole or not
at all."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project, integrity
from annotune.core.store.failures import DamagedProjectError
from annotune.core.tasks import TaskSettings


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "p.annotune", task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as opened:
        opened.add_examples(ImportRecord(fields={"text": f"Jose\u0301 🍕 {i}"}, line=i + 1)
                            for i in range(50))
        for example_id in range(1, 11):
            opened.save_annotation(example_id, {"label": "pos"})
        yield opened


def wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_checkpoint_folds_the_log_into_the_file(project):
    assert wal_bytes(project.path) > 0
    assert project.checkpoint() is True
    assert wal_bytes(project.path) == 0  # truncated: the file alone is the project


def test_checkpoint_never_waits_for_a_reader(project):
    with contextlib.closing(sqlite3.connect(project.path)) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM examples").fetchone()  # holds a snapshot
        project.save_annotation(11, {"label": "neg"})  # after the reader's snapshot
        assert project.checkpoint() is False  # copied what it could, waited for no one
        reader.execute("COMMIT")
    assert project.checkpoint() is True
    project.save_annotation(12, {"label": "neg"})  # the project goes on as before


def test_backup_reports_and_copies_one_self_contained_file(project, tmp_path):
    copy = tmp_path / "copy.annotune"
    report = project.backup(copy)
    assert (report.examples, report.accepted, report.skipped) == (50, 10, 0)
    assert report.bytes == copy.stat().st_size
    assert f"copied 50 examples (10 labeled, 0 skipped) to {copy}" in str(report)
    assert not Path(f"{copy}-wal").exists()
    with contextlib.closing(sqlite3.connect(copy)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    with Project.open(copy) as opened:
        assert opened.annotation(3).payload == {"label": "pos"}
        assert opened.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_backup_refuses_a_destination_that_may_be_open_elsewhere(project, tmp_path):
    copy = tmp_path / "copy.annotune"
    copy.write_bytes(b"old")
    Path(f"{copy}-wal").write_bytes(b"someone's log")
    with pytest.raises(AnnotuneError, match="copy.annotune-wal exists beside it"):
        project.backup(copy, force=True)
    assert copy.read_bytes() == b"old"


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_backup_never_replaces_the_projects_own_log_files(project, suffix):
    # while the project is open its -wal holds labels not yet in the file: replacing it with
    # the copy loses them
    project.save_annotation(11, {"label": "neg"})
    target = Path(f"{project.path}{suffix}")
    before = target.read_bytes() if target.exists() else None
    with pytest.raises(AnnotuneError, match=f"project's own p.annotune{suffix}"):
        project.backup(target, force=True)
    assert (target.read_bytes() if target.exists() else None) == before
    assert project.annotation(11).payload == {"label": "neg"}


def test_a_failed_backup_leaves_neither_a_copy_nor_a_temporary_file(project, tmp_path,
                                                                   monkeypatch):
    def damaged(db, where=None):
        raise DamagedProjectError("Page 7: btree page type invalid", where=where)

    monkeypatch.setattr(integrity, "check_whole", damaged)
    copy = tmp_path / "copy.annotune"
    with pytest.raises(DamagedProjectError) as caught:
        project.backup(copy)
    assert caught.value.where == str(copy)
    assert ".recover" in caught.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.annotune", "p.annotune-shm",
                                                          "p.annotune-wal"]


def test_close_checkpoints_even_beside_another_connection(project):
    other = Project.open(project.path)
    try:
        project.save_annotation(20, {"label": "neg"})
        project.close()
        assert wal_bytes(project.path) == 0
        assert other.annotation(20).payload == {"label": "neg"}
    finally:
        other.close()
