"""A repeated text whose label differs from the kept one is reported, never dropped in silence.

Re-importing a corrected file, or a file that labels texts the project holds unlabeled, used
to say only "duplicates not added": the file's labels were lost while the import looked done.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotune.core.formats.importing import import_file
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

TEXTS = ["great 🍕", "Jose\u0301 came", "东京很大", "שלום", "line\r\nbreak"]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _warnings(report) -> list[str]:
    return [note.message for note in report.notes if note.warning]


@pytest.mark.parametrize("filler", [0, 1500], ids=["one-transaction", "in-steps"])
def test_a_duplicate_with_another_label_is_a_warning_naming_its_line(tmp_path, filler):
    extra = [{"text": f"filler {i}", "label": "neg"} for i in range(filler)]
    with Project.create(tmp_path / "p.annotune", task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as project:
        first = _write(tmp_path / "first.jsonl", [
            {"text": TEXTS[0], "label": "pos"}, {"text": TEXTS[1]}, {"text": TEXTS[2],
                                                                       "label": "neg"},
            *extra])
        assert not _warnings(import_file(project, first))
        project.skip(3)
        corrected = _write(tmp_path / "corrected.jsonl", [
            {"text": TEXTS[0], "label": "neg"},  # line 1: the stored one says pos
            {"text": TEXTS[1], "label": "pos"},  # line 2: stored unlabeled
            {"text": TEXTS[2], "label": "neg"},  # line 3: stored skipped
            {"text": TEXTS[3], "label": "pos"},  # line 4: new
            {"text": TEXTS[3], "label": "neg"},  # line 5: repeats line 4 with another label
            {"text": TEXTS[4]},                  # line 6: new, unlabeled
            {"text": TEXTS[4]},                  # line 7: the same, no label: no conflict
            *extra])                             # the same labels as stored: no conflict
        report = import_file(project, corrected)
        assert report.added == 2 and report.duplicates == 5 + filler
        [warning] = _warnings(report)
        assert warning.startswith("4 duplicates (lines 1, 2, 3, 5) carry an annotation other")
        assert project.annotation(1).payload == {"label": "pos"}  # the project keeps its own


def test_a_second_import_of_the_same_file_warns_of_nothing(tmp_path):
    with Project.create(tmp_path / "p.annotune", task="token-classification",
                        settings=TaskSettings(labels=("PER",))) as project:
        spans = _write(tmp_path / "spans.jsonl", [
            {"text": "Anna 🍕 ate", "spans": [[0, 4, "PER"]]}, {"text": "no one"}])
        import_file(project, spans, format="spans-jsonl")
        report = import_file(project, spans, format="spans-jsonl")
        assert report.duplicates == 2 and not _warnings(report)
        moved = _write(tmp_path / "moved.jsonl", [
            {"text": "Anna 🍕 ate", "spans": [[5, 6, "PER"]]}])
        [warning] = _warnings(import_file(project, moved, format="spans-jsonl"))
        assert "1 duplicate (line 1) carries" in warning
