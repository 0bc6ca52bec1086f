"""Read and write question-answering data: SQuAD JSON (v1.1 and v2.0) and QA JSONL.

SQuAD JSON nests questions under paragraphs under articles; every question becomes one example
``{"context", "question"}`` whose source id is the question id. The article title, article and
paragraph index are kept in the record's meta, so an export rebuilds the same grouping and a
benchmark can split by article (questions on one paragraph must never straddle a split).

Answer offsets (both formats alike): an ``answer_start`` is read as characters, then as UTF-16
code units (JavaScript tools count those: each emoji before the answer shifts it), then within
``REPAIR_WINDOW`` characters (SQuAD has a few answers one or two characters off). A start that
one of the latter two readings places is moved, recorded in ``meta["repaired_answers"]`` and
named in the import report; anything else is a RowProblem naming the question id and what the
context holds at that offset. A question id that names two different questions is refused
(see ``_QuestionIds``).

QA JSONL is the Hugging Face datasets shape, one object per line:
``{"id", "context", "question", "answers": {"text": [...], "answer_start": [...]}}``; a list of
``{"text", "start"}`` objects is read too.

Both exporters leave the answers out of a skipped example (one without an annotation), so it
reads back as unlabeled; an empty answer list means "no answer" (SQuAD 2.0 ``is_impossible``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.errors import where as where_text
from annotune.core.formats.base import ExportRow, ImportOptions, ImportRecord, RowProblem
from annotune.core.formats.files import read_utf8, write_atomic
from annotune.core.formats.tabular import SPLIT_NAMES
from annotune.core.hookspecs import hookimpl
from annotune.core.tasks import Annotation, Task, TaskSettings
from annotune.plugins.offsets import REPAIR_WINDOW, UTF16, answer_start

QA_TASKS = ("question-answering",)
UNTITLED = "untitled"
UTF16_ANSWERS_NOTE = ("answer_start offsets counted in UTF-16 code units (as JavaScript tools "
                      "count them) were converted to characters")
REPAIRED_NOTE = (f"answer_start offsets up to {REPAIR_WINDOW} characters off their answer "
                 "text were moved onto it")


def _placed_answers(context: str, answers: list[dict[str, Any]], label: str, number: int
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]] | RowProblem:
    """Check each ``{"start", "text"}`` answer against the context, reading its start as
    characters, then as UTF-16 code units, then within REPAIR_WINDOW characters.

    Returns the answers with starts in characters, what was changed (for the record's meta)
    and the notes for the import report; or a RowProblem that says what the context holds at
    the stated start.
    """
    placed, changes, notes = [], [], []
    for i, answer in enumerate(answers):
        text, start = answer.get("text"), answer.get("start")
        if not isinstance(text, str) or not text or isinstance(start, bool) or \
                not isinstance(start, int):
            placed.append(answer)  # the task's validation names what is wrong
            continue
        found = answer_start(context, text, start)
        if found is None:
            shown = context[max(start, 0):max(start, 0) + len(text)]
            return RowProblem(number, f"{label}: answer {i + 1} {text!r} does not match the "
                              f"context at answer_start {start}, which reads {shown!r}",
                              field="answers",
                              hint=f"fix answer_start or the text (UTF-16 code units and "
                                   f"offsets within {REPAIR_WINDOW} characters were tried)")
        fixed, how = found
        if how is not None:
            change: dict[str, Any] = {"answer": i + 1, "answer_start": start, "fixed": fixed}
            if how == UTF16:
                change["unit"] = UTF16
            changes.append(change)
            note = UTF16_ANSWERS_NOTE if how == UTF16 else REPAIRED_NOTE
            if note not in notes:
                notes.append(note)
        moved = {key: value for key, value in answer.items() if how is None or key != "end"}
        placed.append({**moved, "start": fixed})  # a moved answer ends where its text does
    return placed, changes, notes


class _QuestionIds:
    """Refuse a question id that names two different questions in one file.

    Ids are how SQuAD tooling joins predictions to questions: the official evaluate script
    and transformers' utils_qa read them into dicts, so a repeated id scores one question
    against the other's answers without a word. A repeated id with a different question is
    almost always two files concatenated or a merge gone wrong, so it is refused, naming both
    places (``--skip-bad-rows`` keeps the first). An exact repeat goes on to the store, which
    keeps one copy and reports the duplicate.
    """

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, int]] = {}  # id -> (record number, content hash)

    def check(self, qid: Any, number: int, content: Any, place: str = "line"
              ) -> RowProblem | None:
        if qid is None:
            return None
        key = str(qid)
        digest = hash(json.dumps(content, sort_keys=True, ensure_ascii=False))
        first = self.seen.setdefault(key, (number, digest))
        if first[0] == number or first[1] == digest:
            return None
        return RowProblem(number, f"question id {key!r} was already used by a different "
                                  f"question ({place} {first[0]})", field="id",
                          hint="give every question its own id, or remove the repeated copy "
                               "(--skip-bad-rows keeps the first)")


def _checked(task: Task, settings: TaskSettings, fields: dict[str, str], annotation: Annotation,
             line: int, label: str) -> Annotation | RowProblem:
    """Validate with the task; turn its error into a RowProblem that names the question."""
    try:
        return task.validate(annotation, fields, settings)
    except AnnotuneError as error:
        detail = f" ({error.where})" if error.where else ""
        return RowProblem(line, f"{label}: {error.what}{detail}", field="answers",
                          hint=error.hint)


class SquadFormat:
    """SQuAD JSON: ``data[].paragraphs[].qas[]``, read as v1.1 or v2.0, written v2.0-style."""

    name = "squad"
    title = "SQuAD JSON (v1.1 / v2.0)"
    extensions = (".json",)
    tasks = QA_TASKS

    def read(self, path: Path, task: Task, settings: TaskSettings, options: ImportOptions
             ) -> Iterator[ImportRecord | RowProblem]:
        articles = self._load(Path(path))
        ids = _QuestionIds()
        number = 0  # questions have no line of their own in JSON: records are numbered
        for a_index, article in enumerate(articles):
            title, paragraphs = self._article(path, a_index, article)
            for p_index, paragraph in enumerate(paragraphs):
                context, qas = self._paragraph(path, a_index, p_index, paragraph)
                for qa in qas:
                    number += 1
                    if isinstance(qa, dict):
                        content = [context, qa.get("question"), qa.get("answers"),
                                   bool(qa.get("is_impossible"))]
                        repeated = ids.check(qa.get("id"), number, content, place="question")
                        if repeated is not None:
                            yield repeated
                            continue
                    yield self._question(qa, number, context, task, settings, options,
                                         {"title": title, "article": a_index,
                                          "paragraph": p_index})

    @staticmethod
    def _load(path: Path) -> list[Any]:
        try:
            data = json.loads(read_utf8(path, "a SQuAD JSON file"))
        except json.JSONDecodeError as error:
            raise AnnotuneError(f"not valid JSON: {error.msg} (column {error.colno})",
                                where=where_text(path, error.lineno),
                                hint="is this a SQuAD .json file?") from None
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise AnnotuneError("a SQuAD file is an object with a 'data' list of articles",
                                where=str(path),
                                hint="for one question per line use the qa-jsonl format")
        return data["data"]

    @staticmethod
    def _article(path: Path, index: int, article: Any) -> tuple[str, list[Any]]:
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise AnnotuneError(f"data[{index}] is not an article with a 'paragraphs' list",
                                where=str(path))
        title = article.get("title")
        return (title if isinstance(title, str) and title else f"article {index + 1}",
                article["paragraphs"])

    @staticmethod
    def _paragraph(path: Path, a_index: int, p_index: int, paragraph: Any
                   ) -> tuple[str, list[Any]]:
        place = f"data[{a_index}].paragraphs[{p_index}]"
        if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
            raise AnnotuneError(f"{place} has no 'context' text", where=str(path))
        qas = paragraph.get("qas", [])
        if not isinstance(qas, list):
            raise AnnotuneError(f"{place}.qas is not a list of questions", where=str(path))
        return paragraph["context"], qas

    @staticmethod
    def _question(qa: Any, number: int, context: str, task: Task, settings: TaskSettings,
                  options: ImportOptions, meta: dict[str, Any]) -> ImportRecord | RowProblem:
        if not isinstance(qa, dict):
            return RowProblem(number, f"question {number} is not an object")
        qid = qa.get("id")
        label = f"question {qid}" if qid is not None else f"question {number}"
        question = qa.get("question")
        if not isinstance(question, str) or not question.strip():
            return RowProblem(number, f"{label} has no question text", field="question")
        fields = {"context": context, "question": question}
        meta = dict(meta)
        if qid is not None:
            meta["id"] = str(qid)
        if isinstance(qa.get("plausible_answers"), list):
            meta["plausible_answers"] = qa["plausible_answers"]

        annotation: Annotation | RowProblem | None = None
        notes: list[str] = []
        if qa.get("is_impossible"):
            annotation = _checked(task, settings, fields, {"answers": []}, number, label)
        elif "answers" in qa:
            if not isinstance(qa["answers"], list):
                return RowProblem(number, f"{label}: 'answers' is not a list", field="answers")
            answers = []
            for i, answer in enumerate(qa["answers"]):
                if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) or \
                        isinstance(answer.get("answer_start"), bool) or \
                        not isinstance(answer.get("answer_start"), int):
                    return RowProblem(number, f"{label}: answer {i + 1} needs 'text' and an "
                                      "integer 'answer_start'", field="answers")
                answers.append({"start": answer["answer_start"], "text": answer["text"]})
            placed = _placed_answers(context, answers, label, number)
            if isinstance(placed, RowProblem):
                return placed
            answers, repairs, notes = placed
            if repairs:
                meta["repaired_answers"] = repairs
            annotation = _checked(task, settings, fields, {"answers": answers}, number, label)
        if isinstance(annotation, RowProblem):
            return annotation
        split = options.split
        if split is None and qa.get("split") is not None:  # written by annotune's export
            split = SPLIT_NAMES.get(str(qa["split"]).strip().lower())
            if split is None:
                return RowProblem(number, f"{label}: unknown split {qa['split']!r}",
                                  field="split", hint="use train, validation (or dev) or test")
        return ImportRecord(fields=fields, annotation=annotation, split=split,
                            line=number, source_id=meta.get("id"), meta=meta, notes=notes)

    def write(self, path: Path, task: Task, rows: Iterable[ExportRow]) -> int:
        """Write SQuAD 2.0-style JSON grouped by article title and context; return the count."""
        articles: dict[str, dict[str, list[dict[str, Any]]]] = {}
        count = 0
        for row in rows:
            meta = row.meta or {}
            title = meta.get("title") or UNTITLED
            qa: dict[str, Any] = {"id": str(meta.get("id", row.id)),
                                  "question": row.fields.get("question", "")}
            # a skipped example has no answers at all: leave the key out (read back unlabeled)
            if "answers" in (row.annotation or {}):
                answers = row.annotation["answers"]
                qa["answers"] = [{"text": a["text"], "answer_start": a["start"]}
                                 for a in answers]
                qa["is_impossible"] = not answers
                if not answers and meta.get("plausible_answers"):
                    qa["plausible_answers"] = meta["plausible_answers"]
            if row.split is not None:  # SQuAD has no place for it; readers skip the key
                qa["split"] = row.split
            paragraphs = articles.setdefault(title, {})
            paragraphs.setdefault(row.fields.get("context", ""), []).append(qa)
            count += 1
        document = {"version": "v2.0", "data": [
            {"title": title, "paragraphs": [{"context": context, "qas": qas}
                                            for context, qas in paragraphs.items()]}
            for title, paragraphs in articles.items()]}
        write_atomic(path, lambda stream: json.dump(document, stream, ensure_ascii=False))
        return count


class QaJsonlFormat:
    """One question per line, in the Hugging Face datasets shape (SQuAD on the hub)."""

    name = "qa-jsonl"
    title = "Question answering JSON lines (Hugging Face datasets shape)"
    extensions = (".jsonl", ".ndjson")
    tasks = QA_TASKS

    def read(self, path: Path, task: Task, settings: TaskSettings, options: ImportOptions
             ) -> Iterator[ImportRecord | RowProblem]:
        keys = {name: options.mapping.get(name, name)
                for name in ("context", "question", "id", "split")}
        keys["answers"] = options.mapping.get("label", "answers")
        try:
            stream = Path(path).open(encoding="utf-8")
        except FileNotFoundError:
            raise AnnotuneError("file not found", where=str(path)) from None
        ids = _QuestionIds()
        with stream:
            try:
                for number, line in enumerate(stream, start=1):
                    if line.strip():
                        yield self._row(line, number, keys, task, settings, options, ids)
            except UnicodeDecodeError as error:
                raise AnnotuneError(f"the file is not UTF-8 ({error.reason})",
                                    where=str(path)) from None

    @staticmethod
    def _row(line: str, number: int, keys: Mapping[str, str], task: Task,
             settings: TaskSettings, options: ImportOptions, ids: _QuestionIds
             ) -> ImportRecord | RowProblem:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as error:
            return RowProblem(number, f"not valid JSON: {error.msg} (column {error.colno})")
        if not isinstance(obj, dict):
            return RowProblem(number, "each line must be a JSON object")
        fields = {}
        for name in ("context", "question"):
            value = obj.get(keys[name])
            if not isinstance(value, str) or not value.strip():
                return RowProblem(number, f"missing or empty '{keys[name]}'", field=name,
                                  hint="map the key with --map" if name not in obj else None)
            fields[name] = value
        qid = obj.get(keys["id"])
        repeated = ids.check(qid, number, [fields, obj.get(keys["answers"])])
        if repeated is not None:
            return repeated
        label = f"question {qid}" if qid is not None else f"line {number}"
        meta: dict[str, Any] = {}
        if qid is not None:
            meta["id"] = str(qid)
        if isinstance(obj.get("title"), str):
            meta["title"] = obj["title"]
        annotation: Annotation | None = None
        notes: list[str] = []
        if obj.get(keys["answers"]) is not None:
            try:
                raw = task.annotation_from_value(obj[keys["answers"]], settings)
            except AnnotuneError as error:
                return RowProblem(number, f"{label}: {error.what}", field="answers",
                                  hint=error.hint)
            placed = _placed_answers(fields["context"], raw["answers"], label, number)
            if isinstance(placed, RowProblem):
                return placed
            answers, repairs, notes = placed
            if repairs:
                meta["repaired_answers"] = repairs
            checked = _checked(task, settings, fields, {"answers": answers}, number, label)
            if isinstance(checked, RowProblem):
                return checked
            annotation = checked
        split = options.split or obj.get(keys["split"])
        return ImportRecord(fields=fields, annotation=annotation,
                            split=split if isinstance(split, str) else None, line=number,
                            source_id=meta.get("id"), meta=meta, notes=notes)

    def write(self, path: Path, task: Task, rows: Iterable[ExportRow]) -> int:
        """Write one HF-shaped object per line; return the number of rows written."""
        count = 0

        def write_rows(stream: Any) -> None:
            nonlocal count
            for row in rows:
                meta = row.meta or {}
                obj: dict[str, Any] = {"id": str(meta.get("id", row.id))}
                if meta.get("title"):
                    obj["title"] = meta["title"]
                obj.update(context=row.fields.get("context", ""),
                           question=row.fields.get("question", ""))
                if "answers" in (row.annotation or {}):  # skipped examples have none
                    answers = row.annotation["answers"]
                    obj["answers"] = {"text": [a["text"] for a in answers],
                                      "answer_start": [a["start"] for a in answers]}
                if row.split:
                    obj["split"] = row.split
                stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
                count += 1

        write_atomic(path, write_rows)
        return count


@hookimpl
def register_formats(register):
    register(SquadFormat())
    register(QaJsonlFormat())
