"""CoNLL export writes every entity as whole tokens, for any script, or refuses the example."""

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ExportRow, ImportOptions
from annotune.core.tasks import TaskSettings
from annotune.plugins.conll import ConllExporter, ConllImporter
from annotune.plugins.token_classification import TokenClassificationTask

SETTINGS = TaskSettings(labels=("PER", "ORG", "LOC", "MISC"))
TASK = TokenClassificationTask()
FAMILY = "👨\u200d👩\u200d👧"


def spans_of(text, *pieces):
    """Spans over the given (piece, label) pairs, each found after the previous one."""
    spans, position = [], 0
    for piece, label in pieces:
        start = text.index(piece, position)
        spans.append({"start": start, "end": start + len(piece), "label": label})
        position = start + len(piece)
    return spans


def row(example_id, text, *pieces, meta=None):
    annotation = TASK.validate({"spans": spans_of(text, *pieces)}, {"text": text}, SETTINGS)
    return ExportRow(example_id, {"text": text}, annotation, None, "accepted", meta or {})


def export(tmp_path, rows, name="out.conll", **kwargs):
    target = tmp_path / name
    ConllExporter(**kwargs).write(target, TASK, rows)
    return target


def read_back(path):
    return list(ConllImporter().read(path, TASK, SETTINGS, ImportOptions()))


def entities(text, spans):
    return [(text[s["start"]:s["end"]], s["label"]) for s in spans]


def test_text_without_spaces_keeps_every_entity(tmp_path):
    target = export(tmp_path, [row(1, "東京と大阪に行った", ("東京", "LOC"), ("大阪", "LOC"))])
    assert target.read_text(encoding="utf-8") == (
        "東京 B-LOC\nと O\n大阪 B-LOC\nに行った O\n\n")


def test_an_entity_inside_a_whitespace_token_becomes_its_own_token(tmp_path):
    rows = [row(1, "Our New-York-based firm", ("New-York", "LOC")),
            row(2, "AcmeCorp™ and IBM", ("AcmeCorp", "ORG"), ("IBM", "ORG"))]
    target = export(tmp_path, rows, scheme="BIOES")
    assert target.read_text(encoding="utf-8") == (
        "Our O\nNew-York S-LOC\n-based O\nfirm O\n\n"
        "AcmeCorp S-ORG\n™ O\nand O\nIBM S-ORG\n\n")


def test_an_imported_token_cut_by_an_edited_span_is_split_with_unknown_columns(tmp_path):
    source = tmp_path / "in.conll"
    source.write_text("Visit VB B-VP O\nHamburg-Altona NNP B-NP B-LOC\ntoday NN B-NP O\n\n",
                      encoding="utf-8")
    [record] = read_back(source)
    text = record.fields["text"]
    # the annotator narrows the place to "Hamburg": a token edge the file did not have
    rows = [row(5, text, ("Hamburg", "LOC"), meta=record.meta)]
    assert export(tmp_path, rows).read_text(encoding="utf-8") == (
        "Visit VB B-VP O\nHamburg _ _ B-LOC\n-Altona _ _ O\ntoday NN B-NP O\n\n")


ROUND_TRIP_TEXTS = [
    ("東京タワーで山田太郎に会った", [("東京タワー", "LOC"), ("山田太郎", "PER")]),
    ("Jose\u0301 ate 🍕 at Café Müller", [("Jose\u0301", "PER"), ("Café Müller", "ORG")]),
    (f"The {FAMILY} visited 🇫🇷Paris and Zoe\u0308's 北京 office", [
        (FAMILY, "PER"), ("Paris", "LOC"), ("Zoe\u0308", "PER"), ("北京", "LOC")]),
    ("التقى محمد بسارة في دبي", [("محمد", "PER"), ("بسارة", "PER"), ("دبي", "LOC")]),
    ("서울에서 김민수를 만났다", [("서울", "LOC"), ("김민수", "PER")]),
    ("Ada\r\nLovelace met Babbage\r\n", [("Ada\r\nLovelace", "PER"), ("Babbage", "PER")]),
]


@pytest.mark.parametrize("scheme", ["BIO", "IOB1", "BIOES"])
def test_export_then_import_gives_the_same_entities(tmp_path, scheme):
    rows = [row(i, text, *pieces) for i, (text, pieces) in enumerate(ROUND_TRIP_TEXTS, 1)]
    records = read_back(export(tmp_path, rows, scheme=scheme))
    assert len(records) == len(rows)
    for record, (_, pieces) in zip(records, ROUND_TRIP_TEXTS, strict=True):
        assert entities(record.fields["text"], record.annotation["spans"]) == [
            (piece.replace("\r\n", " "), label) for piece, label in pieces]
    # imported again, the file's own tokens come back and the spans stay exactly put
    again = [ExportRow(r.line, r.fields, r.annotation, None, "accepted", r.meta)
             for r in records]
    back = read_back(export(tmp_path, again, name="again.conll"))
    assert [(r.fields, r.annotation) for r in back] == [(r.fields, r.annotation)
                                                       for r in records]


def test_an_example_that_cannot_be_written_faithfully_is_refused_by_id(tmp_path):
    rows = [row(1, "Ada wrote"), row(42, "Ada wrote -DOCSTART- notes", ("Ada", "PER"))]
    with pytest.raises(AnnotuneError) as error:
        export(tmp_path, rows)
    assert "example 42" in str(error.value) and "-DOCSTART-" in str(error.value)
    assert not (tmp_path / "out.conll").exists()


@pytest.mark.parametrize("label", ["NEW TYPE", "a\tb", " PER"])
def test_an_entity_type_with_whitespace_is_refused_rather_than_written_unreadable(tmp_path,
                                                                                 label):
    # The tag "B-NEW TYPE" would read back as one column too many: the whole file refused.
    settings = TaskSettings(labels=(label, "LOC"))
    text = "Ada 🍕 met Jose\u0301"
    annotation = TASK.validate({"spans": spans_of(text, ("Ada", label))}, {"text": text},
                               settings)
    rows = [row(1, "Ada wrote", ("Ada", "PER")),
            ExportRow(7, {"text": text}, annotation, None, "accepted", {})]
    with pytest.raises(AnnotuneError) as error:
        export(tmp_path, rows)
    assert "example 7" in str(error.value) and repr(label) in str(error.value)
    assert "spans-jsonl" in str(error.value)
    assert not (tmp_path / "out.conll").exists()
