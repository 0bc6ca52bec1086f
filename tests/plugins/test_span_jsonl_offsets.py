"""Span JSONL: span texts are checked, and offsets in UTF-16 code units are read as such."""

import json

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ExportRow, ImportOptions, ImportRecord, RowProblem
from annotune.core.tasks import TaskSettings
from annotune.plugins.conll import SpanJsonlExporter, SpanJsonlImporter
from annotune.plugins.offsets import UTF16_NOTE
from annotune.plugins.span_jsonl import UTF16_EDGES_NOTE
from annotune.plugins.token_classification import TokenClassificationTask

SETTINGS = TaskSettings(labels=("PER", "ORG", "LOC", "MISC"))
TASK = TokenClassificationTask()
FAMILY = "👨\u200d👩\u200d👧"


def utf16(text, piece, occurrence=0):
    """Offsets of a piece counted in UTF-16 code units, as JavaScript's indexOf gives them."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    units = len(text[:start].encode("utf-16-le")) // 2
    return units, units + len(piece.encode("utf-16-le")) // 2


def chars(text, piece):
    start = text.index(piece)
    return start, start + len(piece)


def studio_line(text, pieces, unit=utf16, with_text=True):
    """A Label Studio JSON-MIN line: spans with start, end, text and labels."""
    spans = []
    for piece, label in pieces:
        start, end = unit(text, piece)
        span = {"start": start, "end": end, "labels": [label]}
        if with_text:
            span["text"] = piece
        spans.append(span)
    return {"text": text, "label": spans}


def write(path, objects, ensure_ascii=False):
    path.write_text("".join(json.dumps(o, ensure_ascii=ensure_ascii) + "\n" for o in objects),
                    encoding="utf-8")
    return path


def read(path):
    return list(SpanJsonlImporter().read(path, TASK, SETTINGS, ImportOptions()))


def entities(record):
    text = record.fields["text"]
    return [(text[s["start"]:s["end"]], s["label"]) for s in record.annotation["spans"]]


TEXTS = [  # emoji, ZWJ, CJK, RTL, combining marks, CRLF: each shifts UTF-16 offsets or not
    (f"🍕 party: {FAMILY} met Jose\u0301 in 東京", [("Jose\u0301", "PER"), ("東京", "LOC")]),
    ("مرحبا 😀 يا محمد في دبي", [("محمد", "PER"), ("دبي", "LOC")]),
    ("Ada\r\nLovelace 🇬🇧 wrote to Babbage", [("Ada\r\nLovelace", "PER"),
                                                ("Babbage", "PER")]),
    ("𠮷野家 opened in Zürich", [("𠮷野家", "ORG"), ("Zürich", "LOC")]),
]


def test_offsets_in_utf16_code_units_are_converted_and_said(tmp_path):
    path = write(tmp_path / "studio.jsonl", [studio_line(t, p) for t, p in TEXTS])
    records = read(path)
    assert all(isinstance(r, ImportRecord) for r in records), records
    assert [entities(r) for r in records] == [p for _, p in TEXTS]
    # every line holds a character beyond the BMP before an entity: each was converted
    assert [r.notes for r in records] == [[UTF16_NOTE]] * 4


@pytest.mark.parametrize("ensure_ascii", [False, True])  # True: 🍕 written as \ud83c\udf55
def test_spans_without_text_follow_the_unit_the_files_texts_show(tmp_path, ensure_ascii):
    text, pieces = TEXTS[0]
    lines = [studio_line(text, pieces, with_text=False)]  # before the lines that tell
    lines += [studio_line(t, p) for t, p in TEXTS[1:]]
    [first, *_] = read(write(tmp_path / "mixed-keys.jsonl", lines, ensure_ascii))
    assert entities(first) == pieces and first.notes == [UTF16_NOTE]


def test_a_span_without_text_that_utf16_cannot_place_is_refused(tmp_path):
    text, pieces = TEXTS[0]
    path = write(tmp_path / "cut.jsonl", [studio_line(text, pieces),
                                          {"text": "🍕 Ada", "spans": [[1, 5, "PER"]]}])
    _, problem = read(path)  # unit 1 is the middle of 🍕 in UTF-16
    assert isinstance(problem, RowProblem) and problem.line == 2
    assert "cannot be read as UTF-16 code units" in problem.message


def test_code_point_files_with_emoji_are_left_as_they_are(tmp_path):
    path = write(tmp_path / "python.jsonl", [studio_line(t, p, unit=chars) for t, p in TEXTS]
                 + [studio_line(TEXTS[0][0], TEXTS[0][1], unit=chars, with_text=False)])
    records = read(path)
    assert [entities(r) for r in records] == [p for _, p in TEXTS] + [TEXTS[0][1]]
    assert all(r.notes == [] for r in records)


def test_a_span_text_that_matches_no_reading_is_refused_with_both(tmp_path):
    text = "🍕 Ada met Bob"
    path = write(tmp_path / "wrong.jsonl", [
        {"text": "Ada met Bob", "label": [{"start": 0, "end": 3, "text": "Bob",
                                           "labels": ["PER"]}]},
        {"text": text, "label": [{"start": 3, "end": 6, "text": "Ann", "labels": ["PER"]}]},
        # the text is checked as written, before the edges are trimmed of whitespace
        {"text": "Visit  Oslo", "spans": [{"start": 5, "end": 11, "text": "  Oslo",
                                          "label": "LOC"}]},
    ])
    first, second, padded = read(path)
    assert entities(padded) == [("Oslo", "LOC")]
    assert isinstance(first, RowProblem) and first.line == 1
    assert "says its text is 'Bob', but the text there reads 'Ada'" in first.message
    assert isinstance(second, RowProblem) and second.line == 2
    assert "'Ann'" in second.message and "reads 'da '" in second.message
    assert "or 'Ada' if they count UTF-16 code units" in second.message
    assert "offsets" in second.hint


def test_a_file_that_shows_both_units_places_only_spans_with_text(tmp_path):
    text = "😀 Ada met Bob"
    path = write(tmp_path / "both.jsonl", [
        studio_line(text, [("Ada", "PER")], unit=chars),
        studio_line(text, [("Bob", "PER")], unit=utf16),
        studio_line(text, [("Bob", "PER")], unit=chars, with_text=False),
        studio_line("Ada met Bob", [("Bob", "PER")], with_text=False),  # no doubt here
    ])
    first, second, third, fourth = read(path)
    assert entities(first) == [("Ada", "PER")] and entities(second) == [("Bob", "PER")]
    assert isinstance(third, RowProblem) and "place is unknown" in third.message
    assert entities(fourth) == [("Bob", "PER")]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_line_separators_inside_texts_do_not_cut_a_line(tmp_path, separator):
    text = f"Ada Lovelace{separator}met Babbage"
    rows = [ExportRow(1, {"text": text}, {"spans": [{"start": 0, "end": 12, "label": "PER"}]},
                      None, "accepted")]
    target = tmp_path / "out.jsonl"
    SpanJsonlExporter().write(target, TASK, rows)  # json.dumps leaves these unescaped
    [record] = read(target)
    assert isinstance(record, ImportRecord) and record.fields["text"] == text
    assert entities(record) == [("Ada Lovelace", "PER")]


def test_a_project_import_reports_the_conversion_with_counts(tmp_path):
    from annotune.core.formats.importing import import_file
    from annotune.core.store import Project

    project = Project.create(tmp_path / "ner.annotune", task="token-classification",
                             settings=SETTINGS)
    lines = [studio_line(t, p) for t, p in TEXTS[:2]]
    lines.insert(1, studio_line("plain text, Ada", [("Ada", "PER")]))
    report = import_file(project, write(tmp_path / "studio.jsonl", lines))
    assert report.row_notes == {UTF16_NOTE: [1, 3]}
    assert f"{UTF16_NOTE} on 2 rows (lines 1, 3)" in str(report)
    stored = [(example.fields["text"], annotation["spans"]) for example, annotation
              in project.labeled()]
    assert [[text[s["start"]:s["end"]] for s in spans] for text, spans in stored] == [
        ["Jose\u0301", "東京"], ["Ada"], ["محمد", "دبي"]]


def test_a_project_import_of_a_wrong_span_text_names_file_line_and_texts(tmp_path):
    from annotune.core.formats.importing import import_file
    from annotune.core.store import Project

    project = Project.create(tmp_path / "ner.annotune", task="token-classification",
                             settings=SETTINGS)
    path = write(tmp_path / "bad.jsonl", [
        studio_line("Ada met Bob", [("Ada", "PER")]),
        {"text": "Ada met Bob", "label": [{"start": 8, "end": 11, "text": "Ann",
                                           "labels": ["PER"]}]}])
    with pytest.raises(AnnotuneError) as error:
        import_file(project, path)
    assert "bad.jsonl:2" in str(error.value) and "'Ann'" in str(error.value)
    assert "'Bob'" in str(error.value) and project.count() == 0


def test_project_import_export_import_keeps_every_offset_exactly(tmp_path):
    """Emoji, a ZWJ family, CJK without spaces, combining accents, CRLF and RTL: span JSON
    lines imported into a project, exported and imported into another come back identical."""
    from annotune.core.formats.importing import export_data, import_file
    from annotune.core.store import Project

    texts = [*TEXTS, ("東京タワーで山田太郎に会った", [("東京タワー", "LOC"), ("山田太郎", "PER")])]
    objects = [{"text": text, "spans": [
        {"start": text.index(piece), "end": text.index(piece) + len(piece), "label": label}
        for piece, label in pieces]} for text, pieces in texts]
    stored = []
    source = write(tmp_path / "in.jsonl", objects)
    for name in ("first", "second"):
        with Project.create(tmp_path / f"{name}.annotune", task="token-classification",
                            settings=SETTINGS) as project:
            import_file(project, source, format="spans-jsonl")
            stored.append([(example.fields["text"], annotation["spans"])
                           for example, annotation in project.labeled()])
            source = tmp_path / f"{name}-out.jsonl"
            assert export_data(project, source, format="spans-jsonl") == len(texts)
    assert stored[0] == stored[1]
    assert [[(text[s["start"]:s["end"]], s["label"]) for s in spans]
            for text, spans in stored[0]] == [pieces for _, pieces in texts]
    assert [text for text, _ in stored[0]] == [text for text, _ in texts]  # CRLF kept


def test_utf16_offsets_without_any_span_text_are_read_by_their_word_edges(tmp_path):
    # Read as characters, "Anna" at UTF-16 [3, 7) of "🍕 Anna went" is "nna ": it used to be
    # trimmed to "nna" and imported without a word.
    lines = [studio_line(t, p, with_text=False) for t, p in TEXTS]
    lines.append({"text": "🍕 Anna went", "label": [[3, 7, "PER"]]})
    records = read(write(tmp_path / "javascript.jsonl", lines))
    assert [entities(r) for r in records] == [p for _, p in TEXTS] + [[("Anna", "PER")]]
    assert all(r.notes == [UTF16_EDGES_NOTE] for r in records)


def test_character_offsets_without_span_texts_stay_characters(tmp_path):
    lines = [studio_line(t, p, unit=chars, with_text=False) for t, p in TEXTS]
    records = read(write(tmp_path / "python.jsonl", lines))
    assert [entities(r) for r in records] == [p for _, p in TEXTS]
    assert all(r.notes == [] for r in records)


def test_word_edges_that_do_not_agree_keep_characters(tmp_path):
    # one span fits only as characters, one only as UTF-16: nothing to go by, as before
    lines = [{"text": "🍕 Anna went", "label": [[3, 7, "PER"]]},
             studio_line("🍕 Bob came", [("Bob", "PER")], unit=chars, with_text=False)]
    records = read(write(tmp_path / "unclear.jsonl", lines))
    assert all(r.notes == [] for r in records)
    assert entities(records[1]) == [("Bob", "PER")]
