"""Exports and new projects are written whole, with the permissions a user expects, or not at all.

A full disk or a failing write must end with a clear error, the old file untouched and no
temporary file left beside it; an exported file is readable by whoever may read the folder
(the umask decides, as for any new file), not private to its writer.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.formats.files import write_atomic
from annotune.core.formats.importing import export_data
from annotune.core.store import Project, migrations
from annotune.core.tasks import TaskSettings


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_export_gets_the_permissions_of_any_new_file(tmp_path, umask_022):
    with Project.create(tmp_path / "p.annotune", task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as project:
        project.add_examples([ImportRecord({"text": "Jose\u0301 🍕"}, {"label": "pos"})])
        for name in ("out.csv", "out.jsonl"):
            export_data(project, tmp_path / name)
            assert _mode(tmp_path / name) == 0o644, name


def test_a_replaced_file_keeps_its_own_permissions(tmp_path, umask_022):
    target = tmp_path / "shared.jsonl"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o664)
    write_atomic(target, lambda out: out.write("new 👨‍👩‍👧\r\n"))
    assert target.read_bytes() == "new 👨‍👩‍👧\r\n".encode()
    assert _mode(target) == 0o664


@pytest.mark.parametrize("existing", [True, False])
def test_a_full_disk_leaves_the_old_file_and_no_temporary_one(tmp_path, existing):
    target = tmp_path / "out.csv"
    if existing:
        target.write_text("old,file\n", encoding="utf-8")

    def fill_the_disk(out):
        out.write("text\n" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(AnnotuneError) as caught:
        write_atomic(target, fill_the_disk)
    assert "No space left" in caught.value.what and "free some space" in caught.value.hint
    assert str(target) == caught.value.where
    if existing:
        assert target.read_text(encoding="utf-8") == "old,file\n"
        assert "unchanged" in caught.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.csv"] if existing else [])


def test_a_project_is_created_where_hard_links_do_not_exist(tmp_path, monkeypatch):
    def no_links(source, target):
        raise PermissionError(errno.EPERM, "Operation not permitted")  # FAT, exFAT, shares

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "usb.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as project:
        project.add_examples([ImportRecord({"text": "שלום 🍕"}, {"label": "pos"})])
    with Project.open(path) as project:
        assert project.count() == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))
                  ) == ["usb.annotune"]
    with pytest.raises(AnnotuneError, match="already exists"):
        Project.create(path, task="text-classification",
                       settings=TaskSettings(labels=("neg", "pos")))


def test_a_full_disk_while_creating_a_project_is_a_clear_error_and_leaves_nothing(
        tmp_path, monkeypatch):
    def full(db, path):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(migrations, "migrate", full)
    path = tmp_path / "p.annotune"
    with pytest.raises(AnnotuneError) as caught:
        Project.create(path, task="text-classification",
                       settings=TaskSettings(labels=("neg", "pos")))
    assert "disk is full" in caught.value.what and caught.value.where == str(path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("writable", "message"), [
    (False, "its folder is read-only"), (True, "cannot open the project file")])
def test_a_project_sqlite_cannot_open_is_not_called_foreign(tmp_path, monkeypatch, writable,
                                                            message):
    # A project in WAL mode on a read-only share or disc cannot be opened at all (SQLite must
    # write its -shm file beside it); that says nothing of the file's content, and calling it
    # "not an annotune project" sends people to delete a good file.
    path = tmp_path / "p.annotune"
    Project.create(path, task="text-classification",
                   settings=TaskSettings(labels=("neg", "pos"))).close()
    real_connect = sqlite3.connect

    def cannot_open(database, *args, **kwargs):
        if str(database) == str(path):
            error = sqlite3.OperationalError("unable to open database file")
            error.sqlite_errorcode = 14  # SQLITE_CANTOPEN
            raise error
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", cannot_open)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: writable)
    with pytest.raises(AnnotuneError) as caught:
        Project.open(path)
    assert message in caught.value.what and "not an" not in caught.value.what
    assert caught.value.where == str(path)


def test_a_new_project_never_takes_in_the_log_of_a_deleted_one(tmp_path):
    # A file manager deletes p.annotune but not p.annotune-wal; SQLite replayed that log into
    # a new project of the same name: 50 examples labeled with a label it does not have.
    path = tmp_path / "p.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as old:
        old.add_examples([ImportRecord({"text": f"old 🍕 {i}"}, {"label": "pos"})
                          for i in range(50)])
        log = Path(f"{path}-wal").read_bytes()
    path.unlink()
    Path(f"{path}-wal").write_bytes(log)
    with pytest.raises(AnnotuneError) as caught:
        Project.create(path, task="text-classification", settings=TaskSettings(labels=("a", "b")))
    assert "p.annotune-wal" in caught.value.what and "delete p.annotune-wal" in caught.value.hint
    assert not path.exists() and Path(f"{path}-wal").read_bytes() == log
    Path(f"{path}-wal").unlink()
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("a", "b"))) as new:
        assert new.count() == 0


def test_an_empty_log_beside_the_name_is_no_obstacle(tmp_path):
    path = tmp_path / "p.annotune"
    Path(f"{path}-wal").write_bytes(b"")
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("a", "b"))) as new:
        assert new.count() == 0
