"""Read and write question-answering data: SQuAD JSON (v1.1 and v2.0) and QA JSONL.

SQuAD JSON nests questions under paragraphs under articles; every question becomes one example
``{"context", "question"}`` whose source id is the question id. The article title, article and
paragraph index are kept in the record's meta, so an export rebuilds the same grouping and a
benchmark can split by article (questions on one paragraph must never straddle a split).

Answer offsets: SQuAD has a few answers whose ``answer_start`` is one or two characters off.
When the answer text is found within ``REPAIR_WINDOW`` characters of the stated offset, the
offset is repaired and the repair recorded in ``meta["repaired_answers"]``; anything further
off is a RowProblem naming the question id and what the context holds at that offset.

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
from annotune.core.hookspecs import hookimpl
from annotune.core.tasks import Annotation, Task, TaskSettings

QA_TASKS = ("question-answering",)
REPAIR_WINDOW = 2  # characters; the published SQuAD off-by-one answers are within this
UNTITLED = "untitled"


def _repair_start(context: str, text: str, start: int) -> int | None:
    """Return the nearest offset within REPAIR_WINDOW where ``text`` occurs, or None."""
    for distance in range(1, REPAIR_WINDOW + 1):
        for candidate in (start - distance, start + distance):
            if candidate >= 0 and context[candidate:candidate + len(text)] == text:
                return candidate
    return None


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
        number = 0  # questions have no line of their own in JSON: records are numbered
        for a_index, article in enumerate(articles):
            title, paragraphs = self._article(path, a_index, article)
            for p_index, paragraph in enumerate(paragraphs):
                context, qas = self._paragraph(path, a_index, p_index, paragraph)
                for qa in qas:
                    number += 1
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
        if qa.get("is_impossible"):
            annotation = _checked(task, settings, fields, {"answers": []}, number, label)
        elif "answers" in qa:
            answers, repairs = [], []
            if not isinstance(qa["answers"], list):
                return RowProblem(number, f"{label}: 'answers' is not a list", field="answers")
            for i, answer in enumerate(qa["answers"]):
                if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) or \
                        isinstance(answer.get("answer_start"), bool) or \
                        not isinstance(answer.get("answer_start"), int):
                    return RowProblem(number, f"{label}: answer {i + 1} needs 'text' and an "
                                      "integer 'answer_start'", field="answers")
                text, start = answer["text"], answer["answer_start"]
                if context[start:start + len(text)] != text and text:
                    fixed = _repair_start(context, text, start)
                    if fixed is None:
                        found = context[max(start, 0):max(start, 0) + len(text)]
                        return RowProblem(
                            number, f"{label}: answer {i + 1} {text!r} does not match the "
                            f"context at answer_start {start}, which reads {found!r}",
                            field="answers",
                            hint=f"fix answer_start or the text (offsets within "
                            f"{REPAIR_WINDOW} characters were tried)")
                    repairs.append({"answer": i + 1, "answer_start": start, "fixed": fixed})
                    start = fixed
                answers.append({"start": start, "text": text})
            if repairs:
                meta["repaired_answers"] = repairs
            annotation = _checked(task, settings, fields, {"answers": answers}, number, label)
        if isinstance(annotation, RowProblem):
            return annotation
        return ImportRecord(fields=fields, annotation=annotation, split=options.split,
                            line=number, source_id=meta.get("id"), meta=meta)

    def write(self, path: Path, task: Task, rows: Iterable[ExportRow]) -> int:
        """Write SQuAD 2.0-style JSON grouped by article title and context; return the count."""
        articles: dict[str, dict[str, list[dict[str, Any]]]] = {}
        count = 0
        for row in rows:
            meta = row.meta or {}
            title = meta.get("title") or UNTITLED
            qa: dict[str, Any] = {"id": str(meta.get("id", row.example_id)),
                                  "question": row.fields.get("question", "")}
            # a skipped example has no answers at all: leave the key out (read back unlabeled)
            if "answers" in (row.annotation or {}):
                answers = row.annotation["answers"]
                qa["answers"] = [{"text": a["text"], "answer_start": a["start"]}
                                 for a in answers]
                qa["is_impossible"] = not answers
                if not answers and meta.get("plausible_answers"):
                    qa["plausible_answers"] = meta["plausible_answers"]
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
        with stream:
            try:
                for number, line in enumerate(stream, start=1):
                    if line.strip():
                        yield self._row(line, number, keys, task, settings, options)
            except UnicodeDecodeError as error:
                raise AnnotuneError(f"the file is not UTF-8 ({error.reason})",
                                    where=str(path)) from None

    @staticmethod
    def _row(line: str, number: int, keys: Mapping[str, str], task: Task,
             settings: TaskSettings, options: ImportOptions) -> ImportRecord | RowProblem:
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
        label = f"question {qid}" if qid is not None else f"line {number}"
        meta: dict[str, Any] = {}
        if qid is not None:
            meta["id"] = str(qid)
        if isinstance(obj.get("title"), str):
            meta["title"] = obj["title"]
        annotation = None
        if obj.get(keys["answers"]) is not None:
            try:
                raw = task.annotation_from_value(obj[keys["answers"]], settings)
            except AnnotuneError as error:
                return RowProblem(number, f"{label}: {error.what}", field="answers",
                                  hint=error.hint)
            annotation = _checked(task, settings, fields, raw, number, label)
            if isinstance(annotation, RowProblem):
                return annotation
        split = options.split or obj.get(keys["split"])
        return ImportRecord(fields=fields, annotation=annotation,
                            split=split if isinstance(split, str) else None, line=number,
                            source_id=meta.get("id"), meta=meta)

    def write(self, path: Path, task: Task, rows: Iterable[ExportRow]) -> int:
        """Write one HF-shaped object per line; return the number of rows written."""
        count = 0

        def write_rows(stream: Any) -> None:
            nonlocal count
            for row in rows:
                meta = row.meta or {}
                obj: dict[str, Any] = {"id": str(meta.get("id", row.example_id))}
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
