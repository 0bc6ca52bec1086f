"""Encodings and line ends: every UTF with a BOM is read, anything else refused with its line."""

from __future__ import annotations

import json
import re

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportOptions
from annotune.core.formats.importing import import_file
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

SENTIMENT = TaskSettings(labels=("neg", "pos"))
ENTITIES = TaskSettings(labels=("PER", "LOC"))
ROWS = [("🍕 night", "pos"), ("👨‍👩‍👧 trip", "pos"), ("Jose\u0301 was bored", "neg"),
        ("東京の映画", "pos"), ("فيلم سيء", "neg"), ("סרט טוב", "pos")]
CSV_TEXT = "text,label\r\n" + "".join(f"{t},{label}\r\n" for t, label in ROWS)


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "s.annotune", task="text-classification",
                        settings=SENTIMENT) as opened:
        yield opened


def labeled(project):
    return [(e.fields["text"], a.payload["label"]) for e, a in project.annotated()]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_utf_files_with_a_byte_order_mark_are_read(project, tmp_path, encoding):
    path = tmp_path / "r.csv"
    data = CSV_TEXT.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data  # the codec writes no mark itself
    path.write_bytes(data)
    report = import_file(project, path)
    assert report.annotated == len(ROWS) and labeled(project) == ROWS


@pytest.mark.parametrize(("encoding", "name"), [("utf-16-le", "utf-16le"),
                                                ("utf-16-be", "utf-16be")])
def test_utf16_without_a_byte_order_mark_is_refused_with_the_command(project, tmp_path,
                                                                     encoding, name):
    path = tmp_path / "r.csv"
    path.write_bytes(CSV_TEXT.encode(encoding))
    with pytest.raises(AnnotuneError) as caught:
        import_file(project, path)
    assert caught.value.where == f"{path}:1"
    assert f"looks like {name.upper()} text without a byte order mark" in caught.value.what
    assert f"iconv -f {name} -t utf-8 r.csv > r-utf8.csv" in caught.value.hint
    assert project.count() == 0


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".txt"])
def test_latin1_is_refused_with_file_line_and_what_the_line_would_read(project, tmp_path,
                                                                       suffix):
    lines = {".csv": "text,label\nfine,pos\ncafé crème,pos\n",
             ".tsv": "text\tlabel\nfine\tpos\ncafé crème\tpos\n",
             ".jsonl": '{"text": "fine"}\n{"text": "ok"}\n{"text": "café crème"}\n',
             ".txt": "fine\nok\ncafé crème\n"}[suffix]
    path = tmp_path / f"r{suffix}"
    path.write_bytes(lines.encode("latin-1"))
    with pytest.raises(AnnotuneError) as caught:
        import_file(project, path)
    assert caught.value.where == f"{path}:3"
    assert re.search(r"\(line 3, column \d+\) is not valid UTF-8", caught.value.what)
    assert "café crème" in caught.value.what  # the line as Latin-1 would read it
    assert f"iconv -f latin1 -t utf-8 r{suffix} > r-utf8{suffix}" in caught.value.hint
    assert project.count() == 0


def test_a_damaged_utf16_file_names_its_line(project, tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("text\r\nok\r\n".encode("utf-16") + b"\x00\xd8")  # half a surrogate pair
    with pytest.raises(AnnotuneError) as caught:
        import_file(project, path)
    assert caught.value.where == f"{path}:3" and "UTF-16-LE" in caught.value.what


def test_a_binary_file_is_refused_with_its_line(project, tmp_path):
    path = tmp_path / "r.txt"
    path.write_bytes(b"first\nsecond \x00\x07\x93 end\n")
    with pytest.raises(AnnotuneError, match="NUL bytes .*binary file") as caught:
        import_file(project, path)
    assert caught.value.where == f"{path}:2"


def test_old_mac_line_ends_split_lines(project, tmp_path):
    path = tmp_path / "r.txt"
    path.write_bytes("🍕 one\rJose\u0301 two\r東京 three\r".encode())
    report = import_file(project, path)
    assert report.added == 3
    assert [project.example(i).fields["text"] for i in (1, 2, 3)] == [
        "🍕 one", "Jose\u0301 two", "東京 three"]
    assert [project.example(i).line for i in (1, 2, 3)] == [1, 2, 3]


def test_a_lone_surrogate_escape_is_a_bad_row_not_a_crash(project, tmp_path):
    lines = ['{"text": "whole 🍕 pair \\ud83c\\udf55", "label": "pos"}',
             '{"text": "half \\ud83c pizza", "label": "pos"}',
             '{"text": "fine", "label": "neg", "note": "\\udf55"}',
             '{"text": "last", "label": "neg"}']
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(AnnotuneError) as caught:
        import_file(project, path)
    assert caught.value.where == f"{path}:2 (field 'text')"
    assert "lone surrogate U+D83C at character 6" in caught.value.what
    assert "(1 more bad rows)" in caught.value.what and project.count() == 0
    report = import_file(project, path, options=ImportOptions(skip_bad_rows=True))
    assert report.added == 2 and [(p.line, p.field) for p in report.problems] == [
        (2, "text"), (3, "note")]
    assert project.example(1).fields["text"] == "whole 🍕 pair 🍕"


def test_other_plugins_records_with_lone_surrogates_are_bad_rows(tmp_path):
    """Span JSON lines go through another plugin's importer; the same check holds."""
    with Project.create(tmp_path / "n.annotune", task="token-classification",
                        settings=ENTITIES) as project:
        path = tmp_path / "spans.jsonl"
        path.write_text('{"text": "José \\ud83c", "spans": []}\n'
                        + json.dumps({"text": "José in 北京", "spans": []}) + "\n",
                        encoding="utf-8")
        report = import_file(project, path, options=ImportOptions(skip_bad_rows=True))
        assert report.added == 1
        [problem] = report.problems
        assert (problem.line, problem.field) == (1, "text")
        assert "lone surrogate U+D83C" in problem.message
