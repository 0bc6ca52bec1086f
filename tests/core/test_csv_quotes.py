"""A quote mark that is never closed properly is a bad row, never rows swallowed into one text.

The lenient CSV reader made every line up to the next quote mark (or the end of the file) one
cell: rows vanished, and the cell became a text with another row's label, without a word.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportOptions
from annotune.core.formats.importing import import_file, preview_file
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

SETTINGS = TaskSettings(labels=("neg", "pos"))
# line 3 opens a quote that closes only on line 7, just before "another"
SWALLOWING = ('text,label\r\ngood 🍕,pos\r\n"unclosed Jose\u0301,neg\r\nשלום,pos\r\n'
              'four,neg\r\nfive,pos\r\n"another",neg\r\n"multi\r\nline, fine",pos\r\n')
UNCLOSED_AT_END = 'text,label\ngood 🍕,pos\n"never closed,neg\nthird,pos\nfourth,neg\n'


@pytest.fixture
def project(tmp_path: Path):
    with Project.create(tmp_path / "p.annotune", task="text-classification",
                        settings=SETTINGS) as opened:
        yield opened


@pytest.mark.parametrize(("content", "lines"), [(SWALLOWING, "lines 3–7"),
                                                (UNCLOSED_AT_END, "lines 3–5")])
def test_an_unclosed_quote_is_a_bad_row_naming_the_lines_it_spans(tmp_path, project, content,
                                                                  lines):
    source = tmp_path / "data.csv"
    source.write_bytes(content.encode("utf-8"))
    with pytest.raises(AnnotuneError) as caught:
        import_file(project, source)
    assert f"{source}:3" in str(caught.value) and lines in caught.value.what
    assert "quote" in caught.value.hint
    assert project.count() == 0
    report = import_file(project, source, options=ImportOptions(skip_bad_rows=True))
    assert [p.line for p in report.problems] == [3]
    texts = [e.fields["text"] for e in project.examples()]
    assert texts[0] == "good 🍕" and not any("unclosed" in t or "never" in t for t in texts)
    if content is SWALLOWING:  # a well-formed multi-line cell after it still reads
        assert texts == ["good 🍕", "multi\r\nline, fine"]


def test_quote_marks_read_as_plain_text_when_asked(tmp_path, project):
    source = tmp_path / "data.csv"
    source.write_text('text,label\n"unclosed,neg\nfour,pos\n', encoding="utf-8")
    import_file(project, source, options=ImportOptions(mapping={"quoting": "none"}))
    assert [e.fields["text"] for e in project.examples()] == ['"unclosed', "four"]


def test_the_preview_shows_the_good_rows_and_the_bad_one(tmp_path):
    source = tmp_path / "data.csv"
    source.write_bytes(SWALLOWING.encode("utf-8"))
    preview = preview_file(("text-classification", SETTINGS), source)
    assert [p.line for p in preview.problems] == [3]
    assert [row["text"] for row in preview.rows] == ["good 🍕", "multi\r\nline, fine"]
