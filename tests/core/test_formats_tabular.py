"""CSV, TSV, JSONL and TXT importers and the JSONL/CSV exporters, on small files written here."""

from __future__ import annotations

import csv
import json

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats import importing, tabular
from annotune.core.formats.base import (
    ExportRow,
    ImportNote,
    ImportOptions,
    ImportRecord,
    RowProblem,
)
from annotune.core.plugins import registry
from annotune.core.tasks import TaskSettings

SENTIMENT = TaskSettings(labels=("negative", "positive"))
TOPICS = TaskSettings(labels=("sport", "tech", "food"), multi_label=True)
NLI = TaskSettings(labels=("entailment", "not_entailment"))


@pytest.fixture(scope="module")
def text_task():
    return registry().task("text-classification")


@pytest.fixture(scope="module")
def pair_task():
    return registry().task("pair-classification")


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def read_all(fmt, path, task, settings, **options):
    """Everything an importer yields: records, problems and notes."""
    return list(registry().importer(fmt).read(path, task, settings, ImportOptions(**options)))


def read(fmt, path, task, settings, **options):
    """Records and problems, without the notes."""
    return [item for item in read_all(fmt, path, task, settings, **options)
            if not isinstance(item, ImportNote)]


def test_formats_are_registered_for_every_task():
    found = registry()
    for name in ("csv", "tsv", "jsonl", "txt"):
        assert found.importer(name).tasks is None
    for name in ("jsonl", "csv"):
        assert found.exporter(name).tasks is None
    assert ".tsv" in found.importer("tsv").extensions


# -- CSV -----------------------------------------------------------------------------------------
def test_csv_rows_become_records(tmp_path, text_task):
    path = write(tmp_path, "r.csv", 'id,text,label,split,stars\n'
                 'a1,"Loved it, truly",positive,train,5\n'
                 'a2,Meh,0,dev,2\n'
                 'a3,"Two\nlines",,TEST,3\n'
                 'a4,after the long one,Negative,,1\n')
    items = read("csv", path, text_task, SENTIMENT)
    assert all(isinstance(item, ImportRecord) for item in items)
    first, second, third, fourth = items
    assert first.fields == {"text": "Loved it, truly"}
    assert first.annotation == {"label": "positive"}
    assert (first.split, first.line, first.source_id) == ("train", 2, "a1")
    assert first.meta == {"format": "csv", "extra": {"stars": "5"}}
    assert second.annotation == {"label": "negative"} and second.split == "validation"
    assert third.annotation is None and third.split == "test"  # empty label: unlabeled
    assert third.fields["text"] == "Two\nlines"
    assert third.line == 4
    assert (fourth.line, fourth.annotation) == (6, {"label": "negative"})  # after 2 lines


def test_csv_mapping_and_forced_split(tmp_path, text_task):
    path = write(tmp_path, "r.csv", "body,sentiment,label\nnice,positive,ignored\n")
    [record] = read("csv", path, text_task, SENTIMENT,
                    mapping={"text": "body", "label": "sentiment"}, split="test")
    assert record.fields == {"text": "nice"}
    assert record.annotation == {"label": "positive"} and record.split == "test"
    assert record.meta["extra"] == {"label": "ignored"}


def test_single_text_file_needs_no_mapping(tmp_path, text_task):
    path = write(tmp_path, "r.csv", "review,label\nlovely,1\n")
    [record] = read("csv", path, text_task, SENTIMENT)
    assert record.fields == {"text": "lovely"} and record.annotation == {"label": "positive"}


def test_missing_column_names_columns_and_the_map_option(tmp_path, pair_task):
    path = write(tmp_path, "r.csv", "first,second,label\na,b,0\n")
    with pytest.raises(AnnotuneError) as caught:
        read("csv", path, pair_task, NLI)
    message = str(caught.value)
    assert "column 'text' not found" in message
    assert "'first', 'second', 'label'" in message and "--map text=COLUMN" in message
    with pytest.raises(AnnotuneError, match="column 'nope' .* is not in the file"):
        read("csv", path, pair_task, NLI, mapping={"text": "first", "text_pair": "nope"})
    [record] = read("csv", path, pair_task, NLI,
                    mapping={"text": "first", "text_pair": "second"})
    assert record.fields == {"text": "a", "text_pair": "b"}


def test_bad_rows_become_problems_with_line_and_field(tmp_path, text_task):
    path = write(tmp_path, "r.csv", "text,label,split\n"
                 "fine,positive,\n"
                 "  ,positive,\n"
                 "odd,great,\n"
                 "short\n"
                 "where,negative,holdout\n")
    items = read("csv", path, text_task, SENTIMENT)
    assert isinstance(items[0], ImportRecord)
    empty, unknown, short, split = items[1:]
    assert all(isinstance(item, RowProblem) for item in items[1:])
    assert (empty.line, empty.field) == (3, "text") and "empty" in empty.message
    assert (unknown.line, unknown.field) == (4, "label")
    assert "unknown label 'great'" in unknown.message
    assert "negative, positive" in unknown.hint
    assert (short.line, short.message) == (5, "expected 3 columns but found 1")
    assert (split.line, split.field) == (6, "split") and "holdout" in split.message


def test_a_tsv_given_as_csv_is_read_by_its_content_and_says_so(tmp_path, text_task):
    path = write(tmp_path, "r.csv", "text\tlabel\nhello, world\t1\n")
    note, record = read_all("csv", path, text_task, SENTIMENT)
    assert record.fields == {"text": "hello, world"} and record.annotation == {"label": "positive"}
    assert "reading r.csv with tabs between columns, not commas" in note.message
    forced = read("csv", path, text_task, SENTIMENT, mapping={"delimiter": ","})
    assert [p.message for p in forced] == ["expected 1 columns but found 2"]


def test_an_excel_sep_line_names_the_delimiter_and_is_not_the_header(tmp_path, text_task):
    # Excel in a semicolon region saves "sep=;" above the header; lines keep their numbers
    path = write(tmp_path, "r.csv", "\ufeffsep=;\r\ntext;label\r\n"
                 "Pizza 🍕, very good;positive\r\nJose\u0301 hated it;negative\r\nodd;great\r\n")
    good, accent, unknown = read_all("csv", path, text_task, SENTIMENT)
    assert good.fields == {"text": "Pizza 🍕, very good"} and good.line == 3
    assert accent.fields == {"text": "Jose\u0301 hated it"}
    assert accent.annotation == {"label": "negative"}
    assert isinstance(unknown, RowProblem) and unknown.line == 5
    duplicate = write(tmp_path, "d.csv", "sep=;\ntext;text\nhello;there\n")
    with pytest.raises(AnnotuneError) as refused:
        read("csv", duplicate, text_task, SENTIMENT)
    assert refused.value.where == f"{duplicate}:2"  # the header's own line
    # chosen by content as well as by name
    named = write(tmp_path, "export.txt", "sep=;\ntext;label\nhello;positive\n")
    importer, note = importing.choose_importer_noting(named, text_task)
    assert importer.name == "csv" and "second line is a header (text, label)" in note.message


def test_a_header_the_rows_do_not_follow_is_refused(tmp_path, text_task):
    path = write(tmp_path, "r.csv", "text\tlabel\nhello\n")
    with pytest.raises(AnnotuneError, match="contains tabs, but the rows below do not split"):
        read("csv", path, text_task, SENTIMENT)


def test_json_lines_given_as_csv_is_named(tmp_path, text_task):
    path = write(tmp_path, "r.csv", '{"text": "hello", "label": "positive"}\n')
    with pytest.raises(AnnotuneError, match="looks like JSON, not a CSV header") as caught:
        read("csv", path, text_task, SENTIMENT)
    assert "--format jsonl" in str(caught.value)


def test_header_problems(tmp_path, text_task):
    with pytest.raises(AnnotuneError, match="the file is empty"):
        read("csv", write(tmp_path, "e.csv", "\n\n"), text_task, SENTIMENT)
    with pytest.raises(AnnotuneError, match="names a column twice: text"):
        read("csv", write(tmp_path, "d.csv", "text,text\na,b\n"), text_task, SENTIMENT)


# -- TSV quoting ---------------------------------------------------------------------------------
STRAY_QUOTES = ('sentence\tlabel\n'
                '" a film that never finds its feet \t0\n'
                'warm and funny \t1\n'
                'the " twist is obvious \t0\n'
                'it lands "\t1\n')
CSV_QUOTED = ('sentence1\tsentence2\tlabel\tidx\n'
              '"The firm said ""profits"" rose."\tProfits rose.\t0\t0\n'
              'Rain fell all day.\t"It was ""dry""."\t1\t1\n'
              'Plain line.\tAnother plain line.\t0\t2\n')


def test_detect_quoting_tells_stray_quotes_from_csv_quoting():
    assert tabular.detect_quoting(STRAY_QUOTES) == csv.QUOTE_NONE
    assert tabular.detect_quoting(CSV_QUOTED) == csv.QUOTE_MINIMAL
    assert tabular.detect_quoting("a\tb\nno quotes\there\n") == csv.QUOTE_NONE
    multiline = 'text\tlabel\n"first\nsecond"\t1\nthird\t0\n'
    assert tabular.detect_quoting(multiline) == csv.QUOTE_MINIMAL


def test_tsv_with_stray_quotes_keeps_every_line(tmp_path, text_task):
    path = write(tmp_path, "sst.tsv", STRAY_QUOTES)
    items = read("tsv", path, text_task, SENTIMENT)
    assert [item.line for item in items] == [2, 3, 4, 5]
    assert items[0].fields["text"] == '" a film that never finds its feet '
    assert [item.annotation["label"] for item in items] == [
        "negative", "positive", "negative", "positive"]


def test_tsv_with_csv_quoting_unquotes_fields(tmp_path, pair_task):
    path = write(tmp_path, "rte.tsv", CSV_QUOTED)
    first, second, third = read("tsv", path, pair_task, NLI)
    assert first.fields == {"text": 'The firm said "profits" rose.', "text_pair": "Profits rose."}
    assert second.fields["text_pair"] == 'It was "dry".'
    assert (first.annotation, second.annotation) == ({"label": "entailment"},
                                                     {"label": "not_entailment"})
    assert (first.source_id, third.source_id) == ("0", "2")


def test_tsv_quoting_can_be_forced(tmp_path, pair_task):
    path = write(tmp_path, "rte.tsv", CSV_QUOTED)
    first = read("tsv", path, pair_task, NLI, mapping={"quoting": "none"})[0]
    assert first.fields["text"] == '"The firm said ""profits"" rose."'
    importer = registry().importer("tsv")
    forced = list(importer.read(path, pair_task, NLI, ImportOptions(), quoting="none"))
    assert forced[0].fields == first.fields
    with pytest.raises(AnnotuneError, match="unknown quoting 'smart'"):
        read("tsv", path, pair_task, NLI, mapping={"quoting": "smart"})


# -- JSONL ---------------------------------------------------------------------------------------
def test_jsonl_records_with_nested_label_lists(tmp_path, text_task):
    lines = [{"text": "goal!", "labels": ["sport"]},
             {"text": "chips and\u2028salsa", "labels": ["food", "tech"], "split": "train"},
             {"text": "nothing", "labels": []},
             {"text": "unlabeled", "labels": None},
             {"text": "by index", "labels": [1]}]
    path = write(tmp_path, "t.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    items = read("jsonl", path, text_task, TOPICS)
    assert [i.annotation for i in items] == [
        {"labels": ["sport"]}, {"labels": ["tech", "food"]}, {"labels": []}, None,
        {"labels": ["tech"]}]
    assert items[1].fields["text"] == "chips and\u2028salsa" and items[1].split == "train"
    assert [i.line for i in items] == [1, 2, 3, 4, 5]


def test_jsonl_single_label_as_name_index_or_object(tmp_path, text_task):
    path = write(tmp_path, "t.jsonl", '{"text": "a", "label": 1}\n'
                 '{"text": "b", "label": {"label": "negative"}}\n'
                 '{"text": "c", "label": "positive", "id": 17}\n')
    items = read("jsonl", path, text_task, SENTIMENT)
    assert [i.annotation["label"] for i in items] == ["positive", "negative", "positive"]
    assert items[2].source_id == "17"


def test_jsonl_bad_lines_become_problems(tmp_path, text_task):
    path = write(tmp_path, "t.jsonl", '{"text": "ok", "label": "positive"}\n'
                 '{"text": "broken", \n'
                 '["not", "an", "object"]\n'
                 '{"label": "positive"}\n'
                 '{"text": ["a"], "label": "positive"}\n')
    items = read("jsonl", path, text_task, SENTIMENT)
    broken, listed, missing, wrong_type = items[1:]
    assert broken.line == 2 and broken.message.startswith("invalid JSON")
    assert listed.line == 3 and "expected a JSON object, found list" in listed.message
    assert (missing.line, missing.field) == (4, "text") and "missing" in missing.message
    assert (wrong_type.line, wrong_type.field) == (5, "text")


def test_files_that_are_not_json_lines(tmp_path, text_task):
    array = write(tmp_path, "a.jsonl", '[{"text": "a"}, {"text": "b"}]')
    with pytest.raises(AnnotuneError, match="a JSON array, not JSON Lines"):
        read("jsonl", array, text_task, SENTIMENT)
    csv_file = write(tmp_path, "b.jsonl", "text,label\nhello,positive\n")
    with pytest.raises(AnnotuneError, match="does not look like JSON Lines") as caught:
        read("jsonl", csv_file, text_task, SENTIMENT)
    assert "b.jsonl:1" in str(caught.value)


LINES = ['{"text": "plain", "label": "positive"}', '  {"text": "leading spaces"}',
         '{"text": "trailing"}  \t', '{"text": "extra"} {"text": "data"}', '{"text": "x"},',
         '\ufeff{"text": "bom"}', '{"text": "broken", ', '[1, 2]', '"a string"', '17', 'null',
         '{"text": "esc\\u00e9 \\ud83d\\ude00 \\n"}', '{"a": {"b": [1, 2.5, -3e2, true]}}',
         '{"text": NaN}', '{"text": "tab\there"}', '{}', ' ', '{"text": "x"}\u00a0', 'nul',
         '{"text": "dup", "text": "dup2"}']


@pytest.mark.parametrize("line", LINES)
def test_loads_line_is_json_loads(line):
    try:
        expected = json.loads(line)
    except json.JSONDecodeError as error:
        with pytest.raises(json.JSONDecodeError) as caught:
            tabular.loads_line(line)
        assert (caught.value.msg, caught.value.pos, caught.value.colno) == \
            (error.msg, error.pos, error.colno)
    else:
        assert tabular.loads_line(line) == expected


def test_jsonl_lines_read_exactly_as_json_loads_reads_them(tmp_path, text_task):
    body = "\n".join(["", "\u3000", *LINES[:12], "\t", '{"text": "crlf"}\r', "x"])
    path = write(tmp_path, "odd.jsonl", body)
    keys, items = registry().importer("jsonl").objects(path)
    expected = []
    for number, raw in enumerate(body.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
            if not isinstance(value, dict):
                value = f"expected a JSON object, found {type(value).__name__}"
        except json.JSONDecodeError as error:
            value = f"invalid JSON: {error.msg} (column {error.colno})"
        expected.append((number, value))
    assert items == expected
    assert items[0] == (3, {"text": "plain", "label": "positive"})
    assert keys == ["text", "label"]


def test_csv_and_jsonl_rows_make_the_same_records(tmp_path, text_task):
    rows = [{"id": "r1", "text": "Loved it", "label": "positive", "split": "train",
             "stars": "5"},
            {"id": "r2", "text": "Meh", "label": "0", "split": "dev", "stars": "2"},
            {"id": "r3", "text": "  ", "label": "positive", "split": "", "stars": "1"},
            {"id": "r4", "text": "No label", "label": "", "split": "test", "stars": "3"},
            {"id": "r5", "text": "Bad label", "label": "great", "split": "", "stars": "4"},
            {"id": "r6", "text": "Bad split", "label": "positive", "split": "x", "stars": "4"}]
    lines = "\n".join(json.dumps(row) for row in rows) + "\n"
    header = list(rows[0])
    table = ",".join(header) + "\n" + "".join(",".join(row[k] for k in header) + "\n"
                                              for row in rows)
    from_jsonl = read("jsonl", write(tmp_path, "r.jsonl", lines), text_task, SENTIMENT)
    from_csv = read("csv", write(tmp_path, "r.csv", table), text_task, SENTIMENT)
    for item in from_csv:
        if isinstance(item, RowProblem):
            item.line -= 1  # below the header
        else:
            item.line -= 1
            item.meta["format"] = "jsonl"
    assert from_jsonl == from_csv
    assert [type(item).__name__ for item in from_jsonl] == [
        "ImportRecord", "ImportRecord", "RowProblem", "ImportRecord", "RowProblem",
        "RowProblem"]
    assert from_jsonl[1] == ImportRecord(fields={"text": "Meh"}, annotation={"label": "negative"},
                                         split="validation", line=2, source_id="r2",
                                         meta={"format": "jsonl", "extra": {"stars": "2"}})


# -- TXT -----------------------------------------------------------------------------------------
def test_txt_one_example_per_non_empty_line(tmp_path, text_task, pair_task):
    path = write(tmp_path, "t.txt", "first line\r\n\n   \nsecond line\n")
    items = read("txt", path, text_task, SENTIMENT, split="train")
    assert [(i.fields, i.line, i.split, i.annotation) for i in items] == [
        ({"text": "first line"}, 1, "train", None), ({"text": "second line"}, 4, "train", None)]
    with pytest.raises(AnnotuneError, match="needs the fields text, text_pair"):
        read("txt", path, pair_task, NLI)


# -- encodings -----------------------------------------------------------------------------------
def test_utf8_with_bom_is_read(tmp_path, text_task):
    path = write(tmp_path, "bom.csv", "text,label\ncafé,positive\n", encoding="utf-8-sig")
    [record] = read("csv", path, text_task, SENTIMENT)
    assert record.fields == {"text": "café"}


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "txt"])
def test_other_encodings_are_refused_with_file_line_and_the_line(tmp_path, text_task, fmt):
    path = write(tmp_path, f"latin.{fmt}", "text\nnaïve\n", encoding="latin-1")
    with pytest.raises(AnnotuneError) as caught:
        read(fmt, path, text_task, SENTIMENT)
    assert caught.value.where == f"{path}:2"
    message = str(caught.value)
    assert "byte 0xEF at byte offset 7 (line 2, column 3)" in message
    assert "as Latin-1/Windows-1252 would be 'naïve'" in message
    assert f"iconv -f latin1 -t utf-8 latin.{fmt} > latin-utf8.{fmt}" in message


def test_binary_files_are_refused(tmp_path, text_task):
    binary = tmp_path / "sheet.csv"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x06\x00")
    with pytest.raises(AnnotuneError, match="binary file, not a CSV file"):
        read("csv", binary, text_task, SENTIMENT)


# -- export --------------------------------------------------------------------------------------
def export_rows():
    return [ExportRow(1, {"text": "goal!"}, {"labels": ["sport"]}, "train", "accepted"),
            ExportRow(2, {"text": 'say "hi", ok'}, {"labels": ["tech", "food"]}, None,
                      "accepted"),
            ExportRow(3, {"text": "skip me"}, {}, None, "skipped")]


def test_jsonl_export_has_the_same_keys_and_types_on_every_line(tmp_path, text_task):
    path = tmp_path / "out.jsonl"
    assert registry().exporter("jsonl").write(path, text_task, export_rows()) == 3
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"id": 1, "text": "goal!", "labels": ["sport"], "split": "train",
                        "status": "accepted"}
    assert lines[2] == {"id": 3, "text": "skip me", "labels": None, "split": None,
                        "status": "skipped"}
    assert len({tuple(line) for line in lines}) == 1  # same keys, same order
    for key in lines[0]:
        assert len({type(line[key]) for line in lines if line[key] is not None}) == 1


def test_csv_export_reads_back(tmp_path, text_task):
    path = tmp_path / "out.csv"
    registry().exporter("csv").write(path, text_task, export_rows())
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1] == {"id": "2", "text": 'say "hi", ok', "labels": "tech|food", "split": "",
                       "status": "accepted"}
    items = read("csv", path, text_task, TOPICS)
    assert [i.annotation for i in items] == [{"labels": ["sport"]}, {"labels": ["tech", "food"]},
                                             None]


def test_export_is_atomic(tmp_path, text_task):
    path = tmp_path / "out.jsonl"
    path.write_text("previous export\n")
    # A value that cannot be written fails halfway through the file.
    unwritable = ExportRow(4, {"text": "x"}, {"labels": [object()]}, None, "accepted")
    for name, error in (("jsonl", TypeError), ("csv", TypeError)):
        with pytest.raises(error):
            registry().exporter(name).write(path, text_task, [*export_rows(), unwritable])
    assert path.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
