"""Copies of a project in use: the backup command holds every label, also those still in the
write-ahead log; a project closed beside another program leaves its file whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from annotune.core import cli
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

EXAMPLES = 1500

# Saves a label on every example, keeps a read open (so nothing folds the log into the file)
# and stays alive: the project is open in another program while it is copied.
HOLDER = """
    import sys, time
    from annotune.core.store import Project
    project = Project.open(sys.argv[1])
    for example_id in range(1, int(sys.argv[2]) + 1):
        project.save_annotation(example_id, {"label": ("neg", "pos")[example_id % 2]})
    reader = Project.open(sys.argv[1])
    cursor = reader.db.execute("SELECT id FROM examples")
    cursor.fetchone()  # a read transaction stays open
    print("ready", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def path(tmp_path, programs) -> Path:
    path = tmp_path / "in use.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=programs.LABELS)) as project:
        project.add_examples(ImportRecord(fields={"text": f"{programs.TEXTS[i % 5]} {i}"},
                                          line=i + 1) for i in range(EXAMPLES))
    return path


def labels_in(path: Path) -> int:
    with Project.open(path) as project:
        return project.count(status="accepted")


def test_backup_of_an_open_project_holds_every_label(path, tmp_path, programs, capsys):
    with programs.running(HOLDER, str(path), str(EXAMPLES)) as holder:
        programs.expect(holder, "ready", timeout_s=120)
        assert Path(f"{path}-wal").stat().st_size > 0  # the labels are in the log
        naive = tmp_path / "copied by hand.annotune"
        shutil.copyfile(path, naive)  # what users did: the file alone
        copy = tmp_path / "backup 🍕.annotune"
        assert cli.main(["backup", str(path), str(copy)]) == cli.EXIT_OK
        assert "copied 1,500 examples (1,500 labeled, 0 skipped)" in capsys.readouterr().out
        assert labels_in(naive) < EXAMPLES  # the hand copy lost labels
        assert labels_in(copy) == EXAMPLES  # the backup has every one
        with Project.open(copy) as opened:
            assert opened.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert opened.annotation(2).payload == {"label": "neg"}
            assert opened.example(1).fields["text"] == f"{programs.TEXTS[0]} 0"
    assert not list(tmp_path.glob(".*copying*"))  # no temporary file left behind


def test_backup_never_replaces_a_file_unless_forced(path, tmp_path, programs, capsys):
    copy = tmp_path / "copy.annotune"
    copy.write_bytes(b"precious")
    assert cli.main(["backup", str(path), str(copy)]) == cli.EXIT_ERROR
    assert "a file already exists here" in capsys.readouterr().err
    assert copy.read_bytes() == b"precious"
    assert cli.main(["backup", str(path), str(copy), "--force"]) == cli.EXIT_OK
    assert labels_in(copy) == 0 and programs.raw(copy, "SELECT COUNT(*) FROM examples") == EXAMPLES
    assert cli.main(["backup", str(path), str(path), "--force"]) == cli.EXIT_ERROR
    assert "replace the project itself" in capsys.readouterr().err
    assert cli.main(["backup", str(path), str(tmp_path / "no such folder" / "c.annotune")]) \
        == cli.EXIT_ERROR


def test_backup_during_an_import_copies_the_project_without_the_unfinished_import(
        path, tmp_path, programs):
    with programs.running(programs.IMPORTER, str(path), "20000", "late", "indexing") as importer:
        programs.expect(importer, "indexing", timeout_s=120)  # every row in, not yet visible
        copy = tmp_path / "copy.annotune"
        assert cli.main(["backup", str(path), str(copy)]) == cli.EXIT_OK
        programs.kill(importer)
    assert programs.raw(copy, "SELECT COUNT(*) FROM examples") == EXAMPLES
    assert programs.raw(copy, "SELECT COUNT(*) FROM imports") == 0
    with Project.open(copy) as opened:
        assert opened.count() == EXAMPLES
        assert opened.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_closing_beside_another_program_leaves_the_file_whole(path, tmp_path, programs):
    """The log is folded into the file on close, though another program keeps it open."""
    other = programs.start("""
        import sys, time
        from annotune.core.store import Project
        project = Project.open(sys.argv[1])
        print("ready", flush=True)
        time.sleep(120)
    """, str(path))
    try:
        programs.expect(other, "ready")
        with Project.open(path) as project:
            for example_id in range(1, 301):
                project.save_annotation(example_id, {"label": "pos"})
        copy = tmp_path / "file alone.annotune"
        shutil.copyfile(path, copy)  # without the -wal beside it
    finally:
        programs.kill(other)
    assert labels_in(copy) == 300
