"""Delimiters and columns: nothing in a table is dropped or misread without a word."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportOptions
from annotune.core.formats.importing import import_file, preview_file
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

SENTIMENT = TaskSettings(labels=("neg", "pos"))
TEXTS = ["good film 🍕", "👨‍👩‍👧 loved it", "Jose\u0301 was bored", "東京の映画", "فيلم سيء",
         "סרט טוב"]
LABELS = ["pos", "pos", "neg", "pos", "neg", "pos"]


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "s.annotune", task="text-classification",
                        settings=SENTIMENT) as opened:
        yield opened


def write(tmp_path, name, text, newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def table(delimiter, header=("text", "label")):
    rows = [delimiter.join(header)] + [f"{t}{delimiter}{label}" for t, label in zip(TEXTS, LABELS,
                                                                                    strict=True)]
    return "\n".join(rows) + "\n"


def labeled(project):
    return [(e.fields["text"], a.payload["label"]) for e, a in project.annotated()]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_semicolons_in_a_tsv_keep_every_label_and_say_so(project, tmp_path, newline):
    path = write(tmp_path, "reviews.tsv", table(";"), newline)
    report = import_file(project, path)
    assert (report.format, report.added, report.annotated) == ("tsv", 6, 6)
    assert labeled(project) == list(zip(TEXTS, LABELS, strict=True))
    [note] = report.notes
    assert note.message.startswith("reading reviews.tsv with semicolons between columns, not "
                                   "tabs: its header splits into 2 columns at semicolons")


@pytest.mark.parametrize(("delimiter", "name"), [(";", "r.csv"), ("|", "r.csv"),
                                                 ("\t", "r.csv"), (",", "r.tsv")])
def test_the_content_decides_the_delimiter(project, tmp_path, delimiter, name):
    report = import_file(project, write(tmp_path, name, table(delimiter)))
    assert report.annotated == 6 and labeled(project) == list(zip(TEXTS, LABELS, strict=True))


def test_a_delimiter_inside_the_texts_does_not_win(project, tmp_path):
    text = 'text,label\n"a; b; c 🍕",pos\nd; e,neg\n'
    report = import_file(project, write(tmp_path, "r.csv", text))
    assert labeled(project) == [("a; b; c 🍕", "pos"), ("d; e", "neg")]
    assert report.notes == []


def test_a_forced_delimiter_is_used_as_given(project, tmp_path):
    path = write(tmp_path, "r.tsv", table(";"))
    with pytest.raises(AnnotuneError, match="column 'label' .* is not in the file"):
        import_file(project, path, options=ImportOptions(mapping={"delimiter": "tab",
                                                                  "label": "label"}))
    with pytest.raises(AnnotuneError, match="unknown delimiter 'colon'"):
        import_file(project, path, options=ImportOptions(mapping={"delimiter": "colon"}))


def test_no_label_column_is_a_warning_with_counts(project, tmp_path):
    path = write(tmp_path, "r.csv", table(",", header=("text", "sentiment")))
    report = import_file(project, path)
    assert (report.added, report.annotated) == (6, 0)
    warning, unused = report.notes
    assert str(warning) == ("warning: no label column found (columns: text, sentiment); 6 rows "
                            "come without labels; map one with --map label=COLUMN")
    assert unused.message.startswith("columns that feed nothing of the Text classification "
                                     "task: 'sentiment' (6 rows)")


def test_the_import_command_prints_the_warning(tmp_path):
    project = tmp_path / "p.annotune"
    cli = [sys.executable, "-m", "annotune.core.cli"]
    subprocess.run([*cli, "init", project, "--labels", "neg,pos"], check=True,
                   capture_output=True)
    path = write(tmp_path, "r.csv", table(",", header=("a", "b")))
    result = subprocess.run([*cli, "import", project, path, "--map", "text=a"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ("warning: no label column found (columns: a, b); 6 rows come without labels; map one "
            "with --map label=COLUMN") in result.stderr.splitlines()
    assert result.stdout.startswith("imported 6 examples (0 labeled)")


def test_json_keys_that_feed_nothing_are_counted(project, tmp_path):
    rows = [{"text": t, "lable": label} for t, label in zip(TEXTS, LABELS, strict=True)]
    rows[0]["stars"] = 5
    path = write(tmp_path, "r.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                              for r in rows))
    report = import_file(project, path)
    warning, unused = report.notes
    assert warning.warning and "no label key found (keys: text, lable, stars)" in warning.message
    assert "'lable' (6 rows), 'stars' (1 rows)" in unused.message
    preview = preview_file(project, path)
    assert [str(n) for n in preview.notes] == [str(n) for n in report.notes]


def test_label_column_names_with_spaces_or_capitals_are_found(project, tmp_path):
    report = import_file(project, write(tmp_path, "r.csv", table(",", header=(" Text", "Label "))))
    assert report.annotated == 6 and report.notes == []


def test_a_map_target_that_is_no_field_is_refused(project, tmp_path):
    path = write(tmp_path, "r.csv", table(",", header=("text", "stars")))
    with pytest.raises(AnnotuneError, match=r"--map lable=\.\.\. names no field") as caught:
        import_file(project, path, options=ImportOptions(mapping={"lable": "stars"}))
    assert "text, label, split, id" in caught.value.hint
    assert project.count() == 0


def test_a_text_column_taken_without_its_name_is_noted(project, tmp_path):
    path = write(tmp_path, "r.csv", "great movie 🍕\nawful plot\nfine\n")
    report = import_file(project, path)
    assert report.added == 2  # the first line was read as the header
    note, warning = report.notes
    assert "the texts are read from column 'great movie 🍕'" in note.message
    assert "add a header line (e.g. 'text')" in note.message
    assert warning.message.startswith("no label column found (columns: great movie 🍕)")


def test_a_split_column_overridden_by_split_is_noted(project, tmp_path):
    path = write(tmp_path, "r.csv", "text,label,split\n🍕,pos,train\nok,neg,test\n")
    report = import_file(project, path, options=ImportOptions(split="validation"))
    assert [str(n) for n in report.notes] == [
        "note: column 'split' (the split) was not read: --split puts every row into validation"]
