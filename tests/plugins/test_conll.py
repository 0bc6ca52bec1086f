"""CoNLL and span JSONL formats: import, broken files, and faithful round trips."""

import json
import re

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ExportRow, ImportOptions, ImportRecord, RowProblem
from annotune.core.plugins import build_registry
from annotune.core.tasks import TaskSettings
from annotune.plugins.conll import (
    ConllExporter,
    ConllImporter,
    SpanJsonlExporter,
    SpanJsonlImporter,
)
from annotune.plugins.token_classification import TokenClassificationTask

SETTINGS = TaskSettings(labels=("PER", "ORG", "LOC", "MISC"))
TASK = TokenClassificationTask()

FOUR_COLUMNS = """\
-DOCSTART- -X- -X- O

Marta NNP B-NP B-PER
Kowalska NNP I-NP I-PER
joined VBD B-VP O
Fabrikam NNP B-NP B-ORG
Ltd NNP I-NP I-ORG
in IN B-PP O
Oslo NNP B-NP B-LOC
. . O O

Shares NNS B-NP O
rose VBD B-VP O

-DOCSTART- -X- -X- O

Kraków NNP B-NP B-LOC
hosts VBZ B-VP O
the DT B-NP O
Łódź NNP I-NP B-MISC
Cup NNP I-NP I-MISC
. . O O

"""


def read(path, settings=SETTINGS, importer=None, options=None):
    importer = importer or ConllImporter()
    return list(importer.read(path, TASK, settings, options or ImportOptions()))


def export_rows(records):
    """Turn imported records into the rows an exporter receives, as the store would."""
    return [ExportRow(example_id=i + 1, fields=r.fields,
                      annotation=TASK.validate(r.annotation, r.fields, SETTINGS),
                      split=r.split, status="accepted", meta=r.meta)
            for i, r in enumerate(records)]


def spans_of(record):
    text = record.fields["text"]
    return [(text[s["start"]:s["end"]], s["label"]) for s in record.annotation["spans"]]


def round_trip(tmp_path, content, name="in.conll", **kwargs):
    source = tmp_path / name
    source.write_text(content, encoding="utf-8")
    records = read(source, **kwargs)
    assert all(isinstance(r, ImportRecord) for r in records), records
    target = tmp_path / f"out-{name}"
    count = ConllExporter().write(target, TASK, export_rows(records))
    assert count == len(records)
    return records, target.read_text(encoding="utf-8")


def test_four_column_file_with_docstart_round_trips_byte_for_byte(tmp_path):
    records, written = round_trip(tmp_path, FOUR_COLUMNS)
    assert written == FOUR_COLUMNS
    assert [r.fields["text"] for r in records] == [
        "Marta Kowalska joined Fabrikam Ltd in Oslo .", "Shares rose",
        "Kraków hosts the Łódź Cup ."]
    assert spans_of(records[0]) == [("Marta Kowalska", "PER"), ("Fabrikam Ltd", "ORG"),
                                    ("Oslo", "LOC")]
    assert spans_of(records[2]) == [("Kraków", "LOC"), ("Łódź Cup", "MISC")]
    assert records[1].annotation == {"spans": []}
    assert [r.line for r in records] == [3, 12, 17]
    assert records[0].meta["before"] == ["-DOCSTART- -X- -X- O"]
    assert "before" not in records[1].meta
    assert records[0].meta["columns"][0] == ["NNP", "B-NP"]
    assert records[0].meta["scheme"] == "BIO"


def test_export_writes_edited_spans_in_the_original_scheme(tmp_path):
    source = tmp_path / "in.conll"
    source.write_text(FOUR_COLUMNS.replace("B-PER", "I-PER").replace("B-ORG", "I-ORG")
                      .replace("B-LOC", "I-LOC").replace("B-MISC", "I-MISC"), encoding="utf-8")
    records = read(source)
    assert records[0].meta["scheme"] == "IOB1"
    rows = export_rows(records)
    text = rows[0].fields["text"]
    # the annotator split "Marta Kowalska" into two PER entities and dropped Oslo
    rows[0].annotation = {"spans": [{"start": 0, "end": 5, "label": "PER"},
                                    {"start": 6, "end": 14, "label": "PER"},
                                    {"start": text.index("Fabrikam"), "end": text.index(" in"),
                                     "label": "ORG"}]}
    target = tmp_path / "out.conll"
    ConllExporter().write(target, TASK, rows)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[2:9] == ["Marta NNP B-NP I-PER", "Kowalska NNP I-NP B-PER", "joined VBD B-VP O",
                          "Fabrikam NNP B-NP I-ORG", "Ltd NNP I-NP I-ORG", "in IN B-PP O",
                          "Oslo NNP B-NP O"]


@pytest.mark.parametrize("content, scheme", [
    ("John B-PER\nSmith I-PER\nsaw O\nAcme B-ORG\n\nRain O\n", "BIO"),
    ("John I-PER\nSmith I-PER\nMary B-PER\nsaw O\nAcme I-ORG\n\n", "IOB1"),
    ("John B-PER\nSmith E-PER\nMary S-PER\nsaw O\nBig B-ORG\nAcme I-ORG\nInc E-ORG\n\n",
     "BIOES"),
])
def test_two_column_schemes_are_detected_and_kept(tmp_path, content, scheme):
    records, written = round_trip(tmp_path, content)
    assert records[0].meta["scheme"] == scheme
    assert "columns" not in records[0].meta
    assert written == (content if content.endswith("\n\n") else content + "\n")
    assert spans_of(records[0])[0] == ("John Smith", "PER")


def test_scheme_can_be_forced(tmp_path):
    # "B-PER B-PER" reads the same in both, but an IOB1 file writes a lone entity as I-
    source = tmp_path / "in.bio"
    source.write_text("Ann B-PER\nBob B-PER\n\nCy O\n", encoding="utf-8")
    for records in (read(source, importer=ConllImporter(scheme="IOB1")),
                    read(source, options=ImportOptions(mapping={"scheme": "iob1"}))):
        assert records[0].meta["scheme"] == "IOB1"
        assert spans_of(records[0]) == [("Ann", "PER"), ("Bob", "PER")]
    with pytest.raises(AnnotuneError, match="unknown tag scheme 'BILOU'"):
        read(source, importer=ConllImporter(scheme="BILOU"))


def test_tabs_and_tags_off_their_scheme_survive_the_round_trip(tmp_path):
    # an I- after O is read as an entity (conlleval), and written back as the file had it
    content = "Ann\tI-PER\nsaw\tO\nBob\tB-PER\nand\tO\nOslo\tI-LOC\n\n"
    records, written = round_trip(tmp_path, content)
    assert written == content
    assert spans_of(records[0]) == [("Ann", "PER"), ("Bob", "PER"), ("Oslo", "LOC")]


def test_blank_lines_are_normalised(tmp_path):
    content = "\n\nAnn B-PER  \n\n\n\nBob B-PER\n"
    _, written = round_trip(tmp_path, content)
    assert written == "Ann B-PER\n\nBob B-PER\n\n"


@pytest.mark.parametrize("bad_line, line_text, problem, hint", [
    ("Acme NNP B-ORG", "Acme NNP B-ORG", "expected 4 columns", "blank line between sentences"),
    ("Acme NNP B-NP X-ORG", "X-ORG", "'X-ORG' is not a valid tag", "B-TYPE"),
    ("Acme NNP B-NP B-COMPANY", "B-COMPANY", "entity type 'COMPANY'", "project labels"),
])
def test_broken_lines_are_reported_with_line_and_hint(tmp_path, bad_line, line_text, problem,
                                                      hint):
    content = FOUR_COLUMNS.replace("Fabrikam NNP B-NP B-ORG", bad_line)
    source = tmp_path / "broken.conll"
    source.write_text(content, encoding="utf-8")
    results = read(source)
    problems = [r for r in results if isinstance(r, RowProblem)]
    assert len(problems) == 1
    assert problems[0].line == 6
    assert problem in problems[0].message and hint in problems[0].hint
    # the broken sentence is left out; its document start moves on to the next sentence
    records = [r for r in results if isinstance(r, ImportRecord)]
    assert [r.fields["text"] for r in records] == ["Shares rose", "Kraków hosts the Łódź Cup ."]
    assert records[0].meta["before"] == ["-DOCSTART- -X- -X- O"]


def test_a_file_of_single_words_is_refused(tmp_path):
    source = tmp_path / "words.conll"
    source.write_text("just\nwords\n", encoding="utf-8")
    [problem] = read(source)
    assert problem.line == 1 and "token and a tag" in problem.message


def test_not_utf8_is_refused_with_the_file_name(tmp_path):
    source = tmp_path / "latin1.conll"
    source.write_bytes("Kraków B-LOC\n".encode("latin-1"))
    with pytest.raises(AnnotuneError, match="latin1.conll.*UTF-8"):
        read(source)


def test_rows_without_conll_details_export_as_whitespace_tokens(tmp_path):
    rows = [ExportRow(1, {"text": "Ada  Lovelace wrote"}, {"spans": [
        {"start": 0, "end": 13, "label": "PER"}]}, None, "accepted")]
    target = tmp_path / "plain.conll"
    assert ConllExporter(scheme="BIOES").write(target, TASK, rows) == 1
    assert target.read_text() == "Ada B-PER\nLovelace E-PER\nwrote O\n\n"


def _first_sentences(path, count):
    """Return the opening lines of a CoNLL file up to the end of its count-th sentence."""
    kept, sentences, in_sentence = [], 0, False
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        kept.append(line)
        if line.strip() and not line.startswith("-DOCSTART-"):
            in_sentence = True
        elif not line.strip() and in_sentence:
            in_sentence = False
            sentences += 1
            if sentences == count:
                break
    return "".join(kept)


def test_conll2003_opening_round_trips(tmp_path, datasets_dir):
    original = datasets_dir / "conll2003" / "train.txt"
    assert original.is_file(), f"missing {original}"
    content = _first_sentences(original, 200)
    records, written = round_trip(tmp_path, content, name="train-200.conll")
    assert len(records) == 200
    assert written == content
    # the file is BIO (IOB2): every entity opens with a B- tag
    n_entities = sum(1 for line in content.splitlines()
                     if line.split() and line.split()[-1].startswith("B-"))
    assert sum(len(r.annotation["spans"]) for r in records) == n_entities
    assert sum(len(r.meta.get("before", [])) for r in records) == content.count("-DOCSTART-")


# -- span JSONL --------------------------------------------------------------------------------
def write_jsonl(path, objects):
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" if not isinstance(o, str)
                            else o + "\n" for o in objects), encoding="utf-8")


def test_span_jsonl_reads_doccano_and_label_studio_shapes(tmp_path):
    source = tmp_path / "spans.jsonl"
    write_jsonl(source, [
        {"id": 7, "text": "Ada met Bob in Oslo", "label": [[0, 3, "PER"], [15, 19, "LOC"]]},
        {"text": "Acme hired Ann", "entities": [
            {"id": 1, "label": "ORG", "start_offset": 0, "end_offset": 4},
            {"id": 2, "label": "PER", "start_offset": 11, "end_offset": 14}]},
        {"text": "Zoë in 東京", "spans": [{"start": 0, "end": 3, "label": "PER"},
                                       {"start": 7, "end": 9, "labels": ["LOC"]}],
         "split": "test"},
        {"text": "Padded  Ann ", "spans": [{"start": 7, "end": 12, "label": "PER"}]},
        {"text": "not labelled yet"},
        "",
    ])
    records = list(SpanJsonlImporter().read(source, TASK, SETTINGS, ImportOptions()))
    assert all(isinstance(r, ImportRecord) for r in records)
    assert [spans_of(r) for r in records[:4]] == [
        [("Ada", "PER"), ("Oslo", "LOC")], [("Acme", "ORG"), ("Ann", "PER")],
        [("Zoë", "PER"), ("東京", "LOC")], [("Ann", "PER")]]
    assert records[0].source_id == "7" and records[2].split == "test"
    assert records[4].annotation is None
    assert [r.line for r in records] == [1, 2, 3, 4, 5]


def test_span_jsonl_reports_bad_lines(tmp_path):
    source = tmp_path / "bad.jsonl"
    write_jsonl(source, [
        "{not json",
        {"text": "Ada", "spans": [{"start": 0, "end": 3, "label": "GENE"}]},
        {"text": "Ada", "label": "positive"},
        {"body": "Ada"},
        {"text": "Ada", "spans": [{"start": 0, "end": 9, "label": "PER"}]},
    ])
    problems = list(SpanJsonlImporter().read(source, TASK, SETTINGS, ImportOptions()))
    assert all(isinstance(p, RowProblem) for p in problems)
    assert [p.line for p in problems] == [1, 2, 3, 4, 5]
    assert "not valid JSON" in problems[0].message
    assert "unknown type 'GENE'" in problems[1].message and "PER" in problems[1].hint
    assert "not a list of spans" in problems[2].message
    assert "no text under the key 'text'" in problems[3].message
    assert "outside the text" in problems[4].message


def test_span_jsonl_export(tmp_path):
    rows = [ExportRow(3, {"text": "Zoë in 東京"}, {"spans": [
        {"start": 0, "end": 3, "label": "PER"}, {"start": 7, "end": 9, "label": "LOC"}]},
        "train", "accepted")]
    target = tmp_path / "out.jsonl"
    assert SpanJsonlExporter().write(target, TASK, rows) == 1
    assert json.loads(target.read_text(encoding="utf-8")) == {
        "id": 3, "text": "Zoë in 東京", "split": "train", "spans": [
            {"start": 0, "end": 3, "label": "PER", "text": "Zoë"},
            {"start": 7, "end": 9, "label": "LOC", "text": "東京"}]}
    # and it reads back as it was written
    [record] = SpanJsonlImporter().read(target, TASK, SETTINGS, ImportOptions())
    assert record.annotation == rows[0].annotation and record.split == "train"


def test_formats_are_registered_for_ner_only():
    registry = build_registry()
    for name in ("conll", "spans-jsonl"):
        assert registry.importers[name].tasks == ("token-classification",)
        assert registry.exporters[name].tasks == ("token-classification",)
    assert ".conll" in registry.importers["conll"].extensions


# -- through a project -------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    from annotune.core.store import Project

    return Project.create(tmp_path / "ner.annotune", task="token-classification",
                          settings=SETTINGS)


def test_project_import_then_export_gives_the_file_back(tmp_path, project):
    from annotune.core.formats.importing import export_data, import_file

    source = tmp_path / "news.conll"
    source.write_text(FOUR_COLUMNS, encoding="utf-8")
    report = import_file(project, source)
    assert (report.format, report.added, report.annotated) == ("conll", 3, 3)
    # an annotator's edit is written in the file's own scheme, beside the kept columns
    example = project.examples()[1]
    project.save_annotation(example.id, {"spans": [{"start": 0, "end": 6, "label": "ORG"}]})
    target = tmp_path / "back.conll"
    assert export_data(project, target) == 3
    assert target.read_text(encoding="utf-8") == FOUR_COLUMNS.replace(
        "Shares NNS B-NP O", "Shares NNS B-NP B-ORG")


def test_project_import_of_a_broken_file_names_file_line_and_fix(tmp_path, project):
    from annotune.core.formats.importing import import_file

    source = tmp_path / "broken.conll"
    source.write_text(FOUR_COLUMNS.replace("B-MISC", "X-MISC"), encoding="utf-8")
    with pytest.raises(AnnotuneError) as error:
        import_file(project, source)
    message = str(error.value)
    assert "broken.conll:20" in message and "'X-MISC' is not a valid tag" in message
    assert "B-TYPE" in message and "nothing was imported" in message
    assert project.count() == 0


def test_txt_files_import_as_conll_when_asked(tmp_path, project):
    from annotune.core.formats.importing import import_file

    source = tmp_path / "tagged.txt"
    source.write_text("Ada B-PER\nLovelace I-PER\nwrote O\n\n", encoding="utf-8")
    report = import_file(project, source, format="conll")
    assert report.annotated == 1
    [(example, annotation)] = project.labeled()
    assert annotation == {"spans": [{"start": 0, "end": 12, "label": "PER"}]}


def test_repeated_sentences_are_kept_and_only_a_second_import_is_a_duplicate(tmp_path, project):
    from annotune.core.formats.importing import export_data, import_file

    source = tmp_path / "repeats.conll"
    # the same short sentence in two documents: two examples, or the file cannot come back
    text = FOUR_COLUMNS + "\n-DOCSTART- -X- -X- O\n\nShares NNS B-NP O\nrose VBD B-VP O\n"
    source.write_text(text, encoding="utf-8")
    report = import_file(project, source)
    assert (report.added, report.duplicates) == (4, 0)
    target = tmp_path / "back.conll"
    assert export_data(project, target) == 4
    def blank_lines_normalised(content):
        return re.sub(r"\n\s*\n+", "\n\n", content).strip()

    assert blank_lines_normalised(target.read_text(encoding="utf-8")) == \
        blank_lines_normalised(text)

    again = import_file(project, source)
    assert (again.added, again.duplicates) == (0, 4)
