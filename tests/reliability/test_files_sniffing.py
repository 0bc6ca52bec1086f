"""Files whose extension lies: the content decides the format, and the import says so."""

from __future__ import annotations

import json

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportOptions
from annotune.core.formats.importing import import_file, preview_file
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

ENTITIES = TaskSettings(labels=("PER", "ORG", "LOC", "MISC"))
SENTIMENT = TaskSettings(labels=("neg", "pos"))
# Token columns as CoNLL-2003 writes them, with tokens people really type.
CONLL = ("-DOCSTART- -X- -X- O\n\n"
         "José NNP B-NP B-PER\nvisited VBD B-VP O\n北京 NNP B-NP B-LOC\n🍕 NN I-NP O\n\n"
         "אבי NNP B-NP B-PER\nfrom IN B-PP O\nعمان NNP B-NP B-LOC\n. . O O\n\n")
NOTE = ("note: reading train.txt as CoNLL (its lines are token columns with BIO tags); "
        "use --format txt to import it as plain text")


@pytest.fixture
def ner(tmp_path):
    with Project.create(tmp_path / "ner.annotune", task="token-classification",
                        settings=ENTITIES) as project:
        yield project


@pytest.fixture
def sentiment(tmp_path):
    with Project.create(tmp_path / "s.annotune", task="text-classification",
                        settings=SENTIMENT) as project:
        yield project


def write(tmp_path, name, text, newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_conll_named_txt_is_read_as_conll_and_says_so(ner, tmp_path, newline):
    path = write(tmp_path, "train.txt", CONLL, newline)
    report = import_file(ner, path)
    assert (report.format, report.added, report.annotated) == ("conll", 2, 2)
    assert [str(note) for note in report.notes] == [NOTE]
    first, second = (ner.example(i) for i in (1, 2))
    assert first.fields["text"] == "José visited 北京 🍕"
    assert [(s["start"], s["end"], s["label"]) for s in ner.annotation(1).payload["spans"]] == [
        (0, 4, "PER"), (13, 15, "LOC")]
    assert second.fields["text"] == "אבי from عمان ."
    assert [s["label"] for s in ner.annotation(2).payload["spans"]] == ["PER", "LOC"]


def test_conll_named_txt_is_refused_by_a_project_that_cannot_take_it(sentiment, tmp_path):
    path = write(tmp_path, "train.txt", CONLL)
    with pytest.raises(AnnotuneError) as caught:
        import_file(sentiment, path)
    error = caught.value
    assert error.where == str(path)
    assert "looks like CoNLL (its lines are token columns with BIO tags)" in error.what
    assert "token-classification" in error.hint
    assert "--format txt to import it as plain text" in error.hint
    assert sentiment.count() == 0


def test_format_txt_still_imports_conll_lines_as_plain_text(sentiment, tmp_path):
    path = write(tmp_path, "train.txt", CONLL)
    report = import_file(sentiment, path, format="txt")
    assert (report.format, report.added, report.notes) == ("txt", 9, [])
    assert sentiment.example(1).fields["text"] == "-DOCSTART- -X- -X- O"


def test_the_import_preview_follows_the_same_content(ner, sentiment, tmp_path):
    path = write(tmp_path, "train.txt", CONLL)
    preview = preview_file(ner, path)
    assert preview.error is None and preview.format == "conll"
    assert [str(note) for note in preview.notes] == [NOTE]
    assert preview.total == 2 and preview.rows[0] == {"text": "José visited 北京 🍕"}
    refused = preview_file(sentiment, path)
    assert "looks like CoNLL" in refused.error and refused.total == 0


def test_prose_that_merely_ends_in_tag_like_words_stays_plain_text(sentiment, tmp_path):
    lines = ["Take the I-95 north", "Family: 👨‍👩‍👧 O", "Jose\u0301 said O", "مرحبا بالعالم",
             "東京は大きい", "a line, with commas, here"]
    path = write(tmp_path, "notes.txt", "\n".join(lines) + "\n")
    report = import_file(sentiment, path)
    assert (report.format, report.added, report.notes) == ("txt", len(lines), [])
    assert [sentiment.example(i + 1).fields["text"] for i in range(len(lines))] == lines


def test_json_lines_named_txt_are_read_as_json_lines(sentiment, tmp_path):
    rows = [{"text": "🍕 tonight", "label": "pos"}, {"text": "Jose\u0301 hated it", "label": "neg"}]
    path = write(tmp_path, "reviews.txt", "".join(json.dumps(r) + "\n" for r in rows))
    report = import_file(sentiment, path)
    assert (report.format, report.annotated) == ("jsonl", 2)
    assert [str(note) for note in report.notes] == [
        "note: reading reviews.txt as JSON Lines (its lines are JSON objects); use --format "
        "txt to import it as plain text"]


def test_a_table_named_txt_is_read_as_a_table(sentiment, tmp_path):
    path = write(tmp_path, "reviews.txt", "text\tlabel\n北京 🍕\tpos\nمرحبا\tneg\n", "\r\n")
    report = import_file(sentiment, path)
    assert (report.format, report.annotated) == ("tsv", 2)
    assert "reading reviews.txt as TSV (its first line is a header (text, label) with tabs " \
           "between columns)" in report.notes[0].message
    assert [a.payload["label"] for _, a in sentiment.annotated()] == ["pos", "neg"]


def test_a_table_with_unknown_column_names_in_a_txt_is_warned_about(sentiment, tmp_path):
    path = write(tmp_path, "reviews.txt", "comment\tsentiment\ngreat 🍕\tpos\nbad\tneg\n")
    report = import_file(sentiment, path)
    assert report.format == "txt"
    [note] = report.notes
    assert note.warning and "3 of 3 lines hold tab characters" in note.message
    assert "--format tsv" in note.message


def test_json_lines_named_csv_are_read_as_json_lines(sentiment, tmp_path):
    path = write(tmp_path, "r.csv", '{"text": "ok 🍕", "label": "pos"}\n')
    report = import_file(sentiment, path)
    assert (report.format, report.annotated) == ("jsonl", 1)
    assert "use --format csv to import it as CSV" in report.notes[0].message


def test_a_format_written_for_the_task_is_not_replaced_by_a_generic_one(tmp_path):
    """Span JSON lines in an NER project stay span JSON lines, though plain JSONL claims them."""
    with Project.create(tmp_path / "n.annotune", task="token-classification",
                        settings=ENTITIES) as project:
        line = {"text": "José in 北京", "spans": [{"start": 0, "end": 4, "label": "PER"}]}
        path = write(tmp_path, "spans.jsonl", json.dumps(line, ensure_ascii=False) + "\n")
        report = import_file(project, path)
        assert (report.format, report.annotated, report.notes) == ("spans-jsonl", 1, [])


def test_real_conll2003_train_txt_imports_as_conll(tmp_path, datasets_dir):
    path = datasets_dir / "conll2003" / "train.txt"
    with Project.create(tmp_path / "c.annotune", task="token-classification",
                        settings=ENTITIES) as project:
        report = import_file(project, path, options=ImportOptions(split="train"))
        assert report.format == "conll" and not report.problems
        assert report.added == 14041 and report.annotated == 14041
        assert str(report.notes[0]) == NOTE
        entities = sum(len(a.payload["spans"]) for _, a in project.annotated())
        assert entities == 23499
    with Project.create(tmp_path / "t.annotune", task="text-classification",
                        settings=SENTIMENT) as project:
        with pytest.raises(AnnotuneError, match="looks like CoNLL"):
            import_file(project, path)
        assert project.count() == 0


def test_a_sniff_that_fails_claims_nothing(sentiment, tmp_path, monkeypatch):
    """A third-party format whose sniff raises must not stop imports of other files."""
    from annotune.core import plugins
    from annotune.core.hookspecs import hookimpl

    class Broken:
        name, title, extensions, tasks = "broken", "Broken format", (".brk",), None

        def sniff(self, head):
            raise RuntimeError("a bug in a plugin")

        def read(self, path, task, settings, options):
            return iter(())

    class Plugin:
        @hookimpl
        def register_formats(self, register):
            register(Broken())

    built = plugins.build_registry(extra_plugins=(Plugin(),))
    monkeypatch.setattr(plugins, "registry", lambda: built)
    path = write(tmp_path, "train.txt", "🍕 one\nJose\u0301 two\n")
    report = import_file(sentiment, path)
    assert (report.format, report.added) == ("txt", 2)
