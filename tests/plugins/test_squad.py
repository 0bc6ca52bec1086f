"""SQuAD JSON and QA JSONL: import of good and broken files, repairs, export and round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ExportRow, ImportOptions, ImportRecord, RowProblem
from annotune.core.plugins import build_registry
from annotune.core.tasks import TaskSettings
from annotune.plugins.question_answering import QuestionAnsweringTask

RIVER = "The Rhine rises in the Swiss Alps and flows into the North Sea."
TOWER = "The tower was finished in 1889 and is 330 metres tall."
CAFE = "Crème brûlée is served at the café in Zürich since 1920."


def squad_v1() -> dict:
    return {"version": "1.1", "data": [
        {"title": "Rivers", "paragraphs": [
            {"context": RIVER, "qas": [
                {"id": "r1", "question": "Where does the Rhine rise?",
                 "answers": [{"answer_start": 19, "text": "the Swiss Alps"},
                             {"answer_start": 23, "text": "Swiss Alps"}]},
                {"id": "r2", "question": "Into which sea?",
                 "answers": [{"answer_start": 49, "text": "the North Sea"}]}]}]},
        {"title": "Buildings", "paragraphs": [
            {"context": TOWER, "qas": [
                {"id": "b1", "question": "When was it finished?",
                 "answers": [{"answer_start": 26, "text": "1889"}]}]},
            {"context": CAFE, "qas": [
                {"id": "b2", "question": "Where is the café?",
                 "answers": [{"answer_start": 38, "text": "Zürich"}]}]}]}]}


def squad_v2() -> dict:
    data = squad_v1()
    data["version"] = "v2.0"
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qa["is_impossible"] = False
    data["data"][0]["paragraphs"][0]["qas"].append(
        {"id": "r3", "question": "How long is the Danube?", "answers": [],
         "is_impossible": True,
         "plausible_answers": [{"answer_start": 4, "text": "Rhine"}]})
    return data


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture
def task():
    return QuestionAnsweringTask()


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def read(registry, fmt: str, path: Path, settings: TaskSettings | None = None,
         options: ImportOptions | None = None) -> list[ImportRecord | RowProblem]:
    return list(registry.importer(fmt).read(path, QuestionAnsweringTask(),
                                            settings or TaskSettings(),
                                            options or ImportOptions()))


def as_export_rows(records: list[ImportRecord]) -> list[ExportRow]:
    return [ExportRow(example_id=i + 1, fields=r.fields, annotation=r.annotation,
                      split=r.split, status="accepted", meta=r.meta)
            for i, r in enumerate(records)]


def test_squad_v1_questions_become_examples(registry, tmp_path):
    records = read(registry, "squad", write_json(tmp_path / "v1.json", squad_v1()))
    assert all(isinstance(r, ImportRecord) for r in records)
    assert [r.source_id for r in records] == ["r1", "r2", "b1", "b2"]
    assert [r.line for r in records] == [1, 2, 3, 4]
    first = records[0]
    assert first.fields == {"context": RIVER, "question": "Where does the Rhine rise?"}
    assert first.annotation == {"answers": [{"start": 19, "text": "the Swiss Alps"},
                                            {"start": 23, "text": "Swiss Alps"}]}
    assert first.meta == {"title": "Rivers", "article": 0, "paragraph": 0, "id": "r1"}
    assert (records[3].meta["title"], records[3].meta["paragraph"]) == ("Buildings", 1)
    assert records[3].annotation == {"answers": [{"start": 38, "text": "Zürich"}]}


def test_squad_v2_unanswerable_questions(registry, tmp_path):
    path = write_json(tmp_path / "v2.json", squad_v2())
    records = read(registry, "squad", path, TaskSettings(allow_unanswerable=True))
    impossible = records[2]
    assert isinstance(impossible, ImportRecord)
    assert impossible.annotation == {"answers": []}
    assert impossible.meta["plausible_answers"] == [{"answer_start": 4, "text": "Rhine"}]
    # without allow_unanswerable the question is a problem that says how to fix it
    strict = read(registry, "squad", path)
    problem = strict[2]
    assert isinstance(problem, RowProblem)
    assert "question r3" in problem.message and "allow_unanswerable" in (problem.hint or "")
    assert sum(isinstance(r, ImportRecord) for r in strict) == 4


def test_off_by_one_answers_are_repaired_and_recorded(registry, tmp_path):
    data = squad_v1()
    data["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 27
    records = read(registry, "squad", write_json(tmp_path / "shifted.json", data))
    repaired = records[2]
    assert isinstance(repaired, ImportRecord)
    assert repaired.annotation == {"answers": [{"start": 26, "text": "1889"}]}
    assert repaired.meta["repaired_answers"] == [{"answer": 1, "answer_start": 27, "fixed": 26}]


def test_answers_far_from_their_text_are_row_problems(registry, tmp_path):
    data = squad_v1()
    data["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 4
    records = read(registry, "squad", write_json(tmp_path / "broken.json", data))
    problem = records[2]
    assert isinstance(problem, RowProblem)
    assert problem.line == 3 and problem.field == "answers"
    assert "question b1" in problem.message
    assert "'1889'" in problem.message and "'towe'" in problem.message
    assert all(isinstance(r, ImportRecord) for i, r in enumerate(records) if i != 2)


def test_questions_without_text_or_with_bad_answers_are_row_problems(registry, tmp_path):
    data = squad_v1()
    qas = data["data"][0]["paragraphs"][0]["qas"]
    qas[0]["question"] = ""
    qas[1]["answers"] = [{"text": "the North Sea"}]
    records = read(registry, "squad", write_json(tmp_path / "bad.json", data))
    assert isinstance(records[0], RowProblem) and records[0].field == "question"
    assert isinstance(records[1], RowProblem) and "answer_start" in records[1].message
    assert "question r2" in records[1].message


@pytest.mark.parametrize(("content", "message"), [
    ('{"data": [', "not valid JSON"),
    ('{"version": "1.1"}', "'data' list"),
    ('{"data": [{"title": "x"}]}', "paragraphs"),
    ('{"data": [{"paragraphs": [{"qas": []}]}]}', r"data\[0\].paragraphs\[0\] has no 'context'"),
])
def test_broken_squad_files_raise_clear_errors(registry, tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AnnotuneError, match=message) as error:
        read(registry, "squad", path)
    assert str(path) in str(error.value)


def test_squad_round_trip_reproduces_the_grouping(registry, tmp_path):
    original = squad_v2()
    settings = TaskSettings(allow_unanswerable=True)
    records = read(registry, "squad", write_json(tmp_path / "in.json", original), settings)
    out = tmp_path / "out.json"
    assert registry.exporter("squad").write(out, QuestionAnsweringTask(),
                                            as_export_rows(records)) == 5
    assert json.loads(out.read_text(encoding="utf-8")) == original
    again = read(registry, "squad", out, settings)
    assert [(r.fields, r.annotation, r.meta) for r in again] == [
        (r.fields, r.annotation, r.meta) for r in records]


def test_export_without_meta_groups_by_context(registry, tmp_path):
    rows = [ExportRow(7, {"context": TOWER, "question": "When?"},
                      {"answers": [{"start": 26, "text": "1889"}]}, None, "accepted"),
            ExportRow(8, {"context": TOWER, "question": "How tall?"},
                      {"answers": [{"start": 38, "text": "330 metres"}]}, None, "accepted")]
    out = tmp_path / "plain.json"
    registry.exporter("squad").write(out, QuestionAnsweringTask(), rows)
    [article] = json.loads(out.read_text(encoding="utf-8"))["data"]
    [paragraph] = article["paragraphs"]
    assert [qa["id"] for qa in paragraph["qas"]] == ["7", "8"]
    assert paragraph["qas"][1]["answers"] == [{"text": "330 metres", "answer_start": 38}]


# -- QA JSONL ------------------------------------------------------------------------------------
def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_qa_jsonl_reads_hf_and_list_shapes(registry, tmp_path):
    path = write_lines(tmp_path / "qa.jsonl", [
        json.dumps({"id": "q1", "title": "Rivers", "context": RIVER, "question": "Rise?",
                    "answers": {"text": ["the Swiss Alps"], "answer_start": [19]}}),
        "",
        json.dumps({"id": "q2", "context": CAFE, "question": "Where?",
                    "answers": [{"text": "Zürich", "start": 38}]}, ensure_ascii=False),
        json.dumps({"id": "q3", "context": TOWER, "question": "Unlabelled?"}),
    ])
    records = read(registry, "qa-jsonl", path)
    assert [r.line for r in records] == [1, 3, 4]
    assert records[0].annotation == {"answers": [{"start": 19, "text": "the Swiss Alps"}]}
    assert records[0].meta == {"id": "q1", "title": "Rivers"}
    assert records[1].annotation == {"answers": [{"start": 38, "text": "Zürich"}]}
    assert records[2].annotation is None and records[2].source_id == "q3"


def test_qa_jsonl_problems_carry_their_line(registry, tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", [
        "{not json",
        json.dumps({"id": "q2", "context": RIVER, "question": "Rise?",
                    "answers": {"text": ["Alps"], "answer_start": [3]}}),
        json.dumps({"id": "q3", "question": "No context?"}),
        json.dumps(["a list"]),
    ])
    problems = read(registry, "qa-jsonl", path)
    assert all(isinstance(p, RowProblem) for p in problems)
    assert [p.line for p in problems] == [1, 2, 3, 4]
    assert "not valid JSON" in problems[0].message
    assert "question q2" in problems[1].message and "'Alps'" in problems[1].message
    assert problems[2].field == "context"


def test_qa_jsonl_mapping_and_forced_split(registry, tmp_path):
    path = write_lines(tmp_path / "mapped.jsonl", [json.dumps(
        {"key": "m1", "passage": TOWER, "query": "When?",
         "gold": [{"start": 26, "text": "1889"}]})])
    options = ImportOptions(mapping={"context": "passage", "question": "query", "id": "key",
                                     "label": "gold"}, split="test")
    [record] = read(registry, "qa-jsonl", path, options=options)
    assert record.fields == {"context": TOWER, "question": "When?"}
    assert record.source_id == "m1" and record.split == "test"
    assert record.annotation == {"answers": [{"start": 26, "text": "1889"}]}


def test_qa_jsonl_round_trip(registry, tmp_path):
    records = read(registry, "squad", write_json(tmp_path / "in.json", squad_v1()))
    out = tmp_path / "out.jsonl"
    rows = as_export_rows(records)
    rows[0].split = "validation"
    assert registry.exporter("qa-jsonl").write(out, QuestionAnsweringTask(), rows) == 4
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["answers"] == {"text": ["the Swiss Alps", "Swiss Alps"],
                                "answer_start": [19, 23]}
    again = read(registry, "qa-jsonl", out)
    assert [(r.fields, r.annotation, r.source_id) for r in again] == [
        (r.fields, r.annotation, r.source_id) for r in records]
    assert again[0].split == "validation" and again[0].meta["title"] == "Rivers"


# -- the real SQuAD subset -----------------------------------------------------------------------
def test_real_squad_subset_imports_completely(registry, tmp_path, datasets_dir):
    path = datasets_dir / "squad" / "squad-v1.1-articles-a.json"
    if not path.is_file():
        pytest.fail(f"the SQuAD subset is missing: expected {path} (see shared/datasets)")
    records = read(registry, "squad", path)
    problems = [r for r in records if isinstance(r, RowProblem)]
    assert problems == []
    assert len(records) == 7793
    assert len({r.meta["title"] for r in records}) == 36
    assert len({r.source_id for r in records}) == 7793
    assert all(r.annotation["answers"] for r in records)
    out = tmp_path / "squad.json"
    assert registry.exporter("squad").write(out, QuestionAnsweringTask(),
                                            as_export_rows(records)) == 7793
    exported = json.loads(out.read_text(encoding="utf-8"))
    original = json.loads(path.read_text(encoding="utf-8"))
    assert [a["title"] for a in exported["data"]] == [a["title"] for a in original["data"]]
    assert [len(a["paragraphs"]) for a in exported["data"]] == [
        len(a["paragraphs"]) for a in original["data"]]


def test_skipped_rows_are_exported_without_answers(registry, tmp_path):
    rows = [ExportRow(3, {"context": TOWER, "question": "When?"}, {}, None, "skipped"),
            ExportRow(4, {"context": TOWER, "question": "Tall?"}, {"answers": []}, None,
                      "accepted")]
    settings = TaskSettings(allow_unanswerable=True)
    for fmt, name in (("squad", "skip.json"), ("qa-jsonl", "skip.jsonl")):
        registry.exporter(fmt).write(tmp_path / name, QuestionAnsweringTask(), rows)
        skipped, impossible = read(registry, fmt, tmp_path / name, settings)
        assert skipped.annotation is None
        assert impossible.annotation == {"answers": []}


def test_project_import_and_export_keep_squad_grouping(tmp_path):
    from annotune.core.formats.importing import export_data, import_file
    from annotune.core.store import Project

    project = Project.create(tmp_path / "qa.annotune", task="question-answering",
                             settings=TaskSettings(max_length=384, allow_unanswerable=True))
    original = squad_v2()
    report = import_file(project, write_json(tmp_path / "in.json", original))
    assert report.added == 5 and report.annotated == 5
    out = tmp_path / "out.json"
    assert export_data(project, out) == 5  # the .json extension picks the squad exporter
    assert json.loads(out.read_text(encoding="utf-8")) == original
