"""Kill -9 during saves and imports: nothing confirmed is lost, no import is ever half there,
and saves from another program go on while an import runs."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

EXISTING = 2000


@pytest.fixture
def path(tmp_path, programs) -> Path:
    path = tmp_path / "shared.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=programs.LABELS)) as project:
        project.add_examples(ImportRecord(fields={"text": f"{programs.TEXTS[i % 5]} {i}"},
                                          line=i + 1) for i in range(EXISTING))
    return path


class Lines:
    """Collect a program's output lines on a thread, with the time each one arrived."""

    def __init__(self, child):
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(child,), daemon=True)
        self.thread.start()

    def _read(self, child) -> None:
        for line in child.stdout:
            self.lines.append((time.monotonic(), line.strip()))

    def saved(self, until: float = float("inf")) -> dict[int, str]:
        found = {}
        for at, line in list(self.lines):
            if line.startswith("saved ") and at <= until:
                _, example_id, label = line.split()
                found[int(example_id)] = label
        return found


def check_whole(path: Path, programs, examples: int, labels: dict[int, str]) -> None:
    """Open the project: the expected examples only, every confirmed label, a sound file."""
    with Project.open(path) as project:  # removes what a killed import left
        assert project.count() == examples
        assert programs.raw(path, "SELECT COUNT(*) FROM examples") == examples
        assert programs.raw(path, "SELECT COUNT(*) FROM imports") == 0
        lost = {i: label for i, label in labels.items()
                if project.annotation(i) is None or project.annotation(i).payload != {
                    "label": label}}
        assert lost == {}
        assert project.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert project.stats()["accepted"] == project.count(status="accepted")


def test_saves_go_on_during_an_import_and_kills_lose_nothing_confirmed(path, programs):
    importer = programs.start(programs.IMPORTER, str(path), "40000", "late", "slow")
    saver = None
    try:
        programs.expect(importer, "ready")
        saver = programs.start(programs.SAVER, str(path), "1", str(EXISTING))
        programs.expect(saver, "ready")
        saves = Lines(saver)
        programs.expect(importer, "step 2")
        started = time.monotonic()
        time.sleep(2 + random.uniform(0, 0.3))  # the import goes on for many more steps
        assert programs.pending_rows(path) > 0 and importer.poll() is None
        during = len(saves.saved()) - len(saves.saved(until=started))
        programs.kill(importer)  # in the middle of its steps
        time.sleep(random.uniform(0, 0.2))
        programs.kill(saver)  # in the middle of a save, or between two
        saves.thread.join(10)
    finally:
        for child in (importer, saver):
            if child is not None and child.poll() is None:
                programs.kill(child)
    confirmed = saves.saved()
    assert during >= 5, f"only {during} saves went through while the import ran"
    check_whole(path, programs, EXISTING, confirmed)


@pytest.mark.parametrize(("hook", "word", "whole"), [
    ("indexing", "indexing", False),  # every row written, hashes being indexed
    ("finish", "finishing", False),  # inside the last transaction, not committed
    ("after", "imported", True),  # the last transaction committed
])
def test_a_kill_at_the_end_of_an_import_leaves_none_or_all_of_it(path, programs, hook, word,
                                                                  whole):
    with programs.running(programs.SAVER, str(path), "1", "300") as saver:
        programs.expect(saver, "ready")
        saves = Lines(saver)
        with programs.running(programs.IMPORTER, str(path), "5000", "late", hook) as importer:
            programs.expect(importer, word)
            if not whole:
                assert programs.pending_rows(path) == 5000  # written, invisible
            programs.kill(importer)
        programs.wait_until(lambda: len(saves.saved()) == 300)
    check_whole(path, programs, EXISTING + (5000 if whole else 0), saves.saved())
    with Project.open(path) as project:  # and the file takes the import again
        summary = project.add_examples(
            ImportRecord(fields={"text": f"late {i} {programs.TEXTS[i % 5]}"}, line=i + 1)
            for i in range(5000))
        assert (summary.added, summary.duplicates) == ((0, 5000) if whole else (5000, 0))
        assert project.count() == EXISTING + 5000
