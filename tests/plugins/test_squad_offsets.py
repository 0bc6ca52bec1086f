"""SQuAD JSON and QA JSONL: answer offsets in UTF-16 code units, repairs, repeated ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportOptions, ImportRecord, RowProblem
from annotune.core.plugins import build_registry
from annotune.core.tasks import TaskSettings
from annotune.plugins.question_answering import QuestionAnsweringTask
from annotune.plugins.squad import REPAIRED_NOTE, UTF16_ANSWERS_NOTE

FAMILY = "👨\u200d👩\u200d👧"
CONTEXTS = [  # emoji, ZWJ, CJK beyond the BMP, RTL, combining accents and CRLF
    (f"🍕🍕 The {FAMILY} met Jose\u0301 in Zürich.\r\nThey stayed.", "Jose\u0301 in Zürich"),
    ("قال 😀 محمد إن دبي جميلة", "دبي"),
    ("𠮷野家 has shops in 東京 and 大阪", "大阪"),
]


def utf16_start(context: str, answer: str) -> int:
    """The answer's start as JavaScript counts it: UTF-16 code units."""
    return len(context[:context.index(answer)].encode("utf-16-le")) // 2


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def read(registry, fmt: str, path: Path, options: ImportOptions | None = None):
    return list(registry.importer(fmt).read(path, QuestionAnsweringTask(), TaskSettings(),
                                            options or ImportOptions()))


def squad_file(path: Path, questions: list[tuple[str, str, str, int]]) -> Path:
    """A SQuAD v1.1 file: one paragraph per (id, context, answer, answer_start) question."""
    data = {"version": "1.1", "data": [{"title": "Mixed", "paragraphs": [
        {"context": context, "qas": [{"id": qid, "question": f"What about {qid}?",
                                      "answers": [{"text": answer, "answer_start": start}]}]}
        for qid, context, answer, start in questions]}]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def jsonl_file(path: Path, questions: list[tuple[str, str, str, int]]) -> Path:
    path.write_text("".join(json.dumps(
        {"id": qid, "context": context, "question": f"What about {qid}?",
         "answers": {"text": [answer], "answer_start": [start]}}, ensure_ascii=False) + "\n"
        for qid, context, answer, start in questions), encoding="utf-8")
    return path


WRITERS = {"squad": (squad_file, "in.json"), "qa-jsonl": (jsonl_file, "in.jsonl")}


@pytest.mark.parametrize("fmt", ["squad", "qa-jsonl"])
def test_utf16_answer_starts_are_converted_recorded_and_said(registry, tmp_path, fmt):
    write, name = WRITERS[fmt]
    questions = [(f"q{i}", context, answer, utf16_start(context, answer))
                 for i, (context, answer) in enumerate(CONTEXTS)]
    records = read(registry, fmt, write(tmp_path / name, questions))
    assert all(isinstance(r, ImportRecord) for r in records), records
    for record, (context, answer) in zip(records, CONTEXTS, strict=True):
        [stored] = record.annotation["answers"]
        assert stored == {"start": context.index(answer), "text": answer}
        assert record.notes == [UTF16_ANSWERS_NOTE]
        [change] = record.meta["repaired_answers"]
        assert change["unit"] == "utf-16" and change["fixed"] == context.index(answer)


@pytest.mark.parametrize("fmt", ["squad", "qa-jsonl"])
def test_both_formats_repair_the_same_off_by_one_starts(registry, tmp_path, fmt):
    write, name = WRITERS[fmt]
    context, answer = CONTEXTS[0]
    start = context.index(answer)
    [record] = read(registry, fmt, write(tmp_path / name, [("q1", context, answer, start + 1)]))
    assert record.annotation == {"answers": [{"start": start, "text": answer}]}
    assert record.notes == [REPAIRED_NOTE]
    assert record.meta["repaired_answers"] == [{"answer": 1, "answer_start": start + 1,
                                                "fixed": start}]


@pytest.mark.parametrize("fmt", ["squad", "qa-jsonl"])
def test_an_answer_no_reading_finds_names_what_the_context_holds(registry, tmp_path, fmt):
    write, name = WRITERS[fmt]
    context = CONTEXTS[1][0]
    [problem] = read(registry, fmt, write(tmp_path / name, [("q1", context, "باريس", 4)]))
    assert isinstance(problem, RowProblem) and problem.field == "answers"
    assert "'باريس'" in problem.message and f"{context[4:9]!r}" in problem.message
    assert "UTF-16" in problem.hint


@pytest.mark.parametrize("fmt", ["squad", "qa-jsonl"])
def test_a_repeated_id_for_another_question_is_refused_naming_the_first(registry, tmp_path,
                                                                       fmt):
    write, name = WRITERS[fmt]
    (first, answer_1), (second, answer_2) = CONTEXTS[0], CONTEXTS[2]
    path = write(tmp_path / name, [
        ("q1", first, answer_1, first.index(answer_1)),
        ("q2", second, answer_2, second.index(answer_2)),
        ("q1", second, answer_2, second.index(answer_2)),  # a merge gone wrong
        ("q2", second, answer_2, second.index(answer_2)),  # the very same question again
    ])
    records = read(registry, fmt, path)
    assert [type(r).__name__ for r in records] == [
        "ImportRecord", "ImportRecord", "RowProblem", "ImportRecord"]
    problem = records[2]
    assert problem.line == 3 and problem.field == "id"
    assert "question id 'q1' was already used by a different question" in problem.message
    assert ("question 1" if fmt == "squad" else "line 1") in problem.message
    assert "--skip-bad-rows keeps the first" in problem.hint


def test_a_project_refuses_repeated_ids_or_keeps_the_first_when_told(tmp_path):
    from annotune.core.formats.importing import import_file
    from annotune.core.store import Project

    project = Project.create(tmp_path / "qa.annotune", task="question-answering",
                             settings=TaskSettings(max_length=384))
    (first, answer_1), (second, answer_2) = CONTEXTS[0], CONTEXTS[2]
    path = jsonl_file(tmp_path / "merged.jsonl", [
        ("q1", first, answer_1, first.index(answer_1)),
        ("q1", second, answer_2, utf16_start(second, answer_2)),
        ("q1", first, answer_1, first.index(answer_1))])
    with pytest.raises(AnnotuneError) as error:
        import_file(project, path)
    assert "merged.jsonl:2" in str(error.value) and "'q1'" in str(error.value)
    assert project.count() == 0
    report = import_file(project, path, options=ImportOptions(skip_bad_rows=True))
    assert (report.added, report.duplicates, len(report.problems)) == (1, 1, 1)
    [(example, annotation)] = project.labeled()
    assert example.fields["context"] == first
    assert annotation == {"answers": [{"start": first.index(answer_1), "text": answer_1}]}


def test_a_project_import_says_how_many_answers_were_converted(tmp_path):
    from annotune.core.formats.importing import import_file
    from annotune.core.store import Project

    project = Project.create(tmp_path / "qa.annotune", task="question-answering",
                             settings=TaskSettings(max_length=384))
    questions = [(f"q{i}", context, answer, utf16_start(context, answer))
                 for i, (context, answer) in enumerate(CONTEXTS)]
    report = import_file(project, squad_file(tmp_path / "js.json", questions))
    assert f"{UTF16_ANSWERS_NOTE} on 3 rows (lines 1, 2, 3)" in str(report)
    assert [a["answers"][0]["text"] for _, a in project.labeled()] == [a for _, a in CONTEXTS]
