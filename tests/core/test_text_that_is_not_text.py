"""A NUL or half a surrogate pair never gets into a project, whichever way the text comes in.

JSON escapes can spell both ("\\u0000", "\\ud83c" alone); a NUL stored in a text made every CSV
export of the project unreadable by the CSV importer (a file with NUL bytes is binary).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportOptions, ImportRecord
from annotune.core.formats.importing import import_file
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

NUL = "\u0000"

# task, settings, format, a good line and a line whose text holds a NUL (as a JSON escape)
CASES = [
    ("text-classification", TaskSettings(labels=("neg", "pos")), "jsonl",
     {"text": "good 🍕", "label": "pos"}, {"text": f"bad{NUL}byte", "label": "neg"}),
    ("token-classification", TaskSettings(labels=("PER",)), "spans-jsonl",
     {"text": "Anna ate", "spans": [[0, 4, "PER"]]},
     {"text": f"Bob{NUL} ate", "spans": [[0, 3, "PER"]]}),
    ("question-answering", TaskSettings(), "qa-jsonl",
     {"context": "Anna ate 🍕", "question": "who?", "answers": {"text": ["Anna"],
                                                               "answer_start": [0]}},
     {"context": "Bob ate", "question": f"who{NUL}?", "answers": {"text": ["Bob"],
                                                                  "answer_start": [0]}}),
]


@pytest.mark.parametrize(("task", "settings", "fmt", "good", "bad"), CASES,
                         ids=[case[2] for case in CASES])
def test_a_nul_in_a_json_text_is_a_bad_row_with_its_line(tmp_path: Path, task, settings, fmt,
                                                         good, bad) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    assert "\\u0000" in source.read_text(encoding="utf-8")
    with Project.create(tmp_path / "p.annotune", task=task, settings=settings,
                        base_model=None) as project:
        with pytest.raises(AnnotuneError) as caught:
            import_file(project, source, format=fmt)
        assert "NUL" in caught.value.what and ":2" in str(caught.value)
        assert project.count() == 0  # all or nothing
        report = import_file(project, source, format=fmt,
                             options=ImportOptions(skip_bad_rows=True))
        assert project.count() == 1 and [p.line for p in report.problems] == [2]


def test_a_squad_file_with_a_nul_in_a_question_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": "Anna ate", "qas": [
            {"id": "a", "question": f"who{NUL}?", "answers": [{"text": "Anna",
                                                              "answer_start": 0}]}]}]}]}),
        encoding="utf-8")
    with Project.create(tmp_path / "p.annotune", task="question-answering",
                        settings=TaskSettings(), base_model=None) as project:
        with pytest.raises(AnnotuneError, match="NUL"):
            import_file(project, source)
        assert project.count() == 0


@pytest.mark.parametrize("bad", [f"who{NUL}?", "who \ud83c?"])
def test_an_edited_field_must_be_text(tmp_path: Path, bad: str) -> None:
    with Project.create(tmp_path / "p.annotune", task="question-answering",
                        settings=TaskSettings(), base_model=None) as project:
        project.add_examples([ImportRecord({"context": "Anna ate 🍕", "question": "who?"})])
        with pytest.raises(AnnotuneError) as caught:
            project.update_fields(1, {"question": bad})
        assert "field 'question'" in str(caught.value)
        assert project.example(1).fields["question"] == "who?"
