"""A training process and the desktop share the project file: opening the project a second
time in one process must not cost the first connection its locks (the training process would
then delete the WAL under it when it closes, and the project reads as malformed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

WRITER = textwrap.dedent("""
    import sys
    from annotune.core.formats.base import ImportRecord
    from annotune.core.store import Project
    with Project.open(sys.argv[1]) as project:  # as a training process records its run
        run_id = project.create_run({"epochs": 1}, "cpu")
        project.add_examples([ImportRecord(fields={"text": f"其他 {i} 🍕"}, line=i + 1)
                              for i in range(500)])
    """)


def test_a_second_open_in_one_process_keeps_the_first_connection_safe(tmp_path):
    path = tmp_path / "shared.annotune"
    project = Project.create(path, task="text-classification",
                             settings=TaskSettings(labels=("neg", "pos")))
    project.add_examples([ImportRecord(fields={"text": f"Jose\u0301 {i}"}, line=i + 1)
                          for i in range(200)])
    Project.open(path).close()  # a worker thread's own connection, come and gone
    subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True, timeout=120)
    # the other process closed its connection while this one stays open: the WAL that this
    # connection reads through must still be there
    assert Path(f"{path}-wal").exists()
    assert project.count() == 700 and project.next_example() is not None
    assert project.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    project.close()


def test_foreign_and_empty_files_are_still_refused_untouched(tmp_path):
    import pytest

    from annotune.core.errors import AnnotuneError

    for name, content in (("empty.annotune", b""), ("notes.annotune", "Café 🍕\r\n".encode())):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(AnnotuneError, match=r"not an annotune project \(not an SQLite"):
            Project.open(path)
        assert path.read_bytes() == content
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name)) == [name]
