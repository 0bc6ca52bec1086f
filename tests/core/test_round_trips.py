"""Export a project, import the file into a new project: every annotation comes back as it was.

Every task, every export format that has an importer of the same name, with the texts people
write: astral emoji, a ZWJ family, combining accents, CJK, Arabic and Hebrew, CRLF and lone CR,
tabs and quotes, a byte order mark inside a text, a text over 10,000 characters, and accepted
annotations that are empty ("no entities", "unanswerable", the empty label set); splits too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from annotune.core import plugins
from annotune.core.formats.base import ImportRecord
from annotune.core.formats.importing import export_data, import_file
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

TEXTS = [
    "I ate 🍕 with Anna in Paris",
    "👨‍👩‍👧 Müller family met Jose\u0301 today",
    "我在北京见了王小明",
    "ذهب محمد إلى القاهرة",
    "שלום דוד מירושלים",
    "Line one Bob\r\nline two Alice",
    "lone\rcr Carol",
    "tab\tseparated Dave\tthere",
    'quote "Eve" said, then \'Zoe\'',
    "\ufeffBOM Fred here",
    "x " * 6000 + "Zed end",
]
# the word of each text that is its entity and its answer
WORDS = ["Anna", "Jose\u0301", "王小明", "القاهرة", "דוד", "Alice", "Carol", "Dave", '"Eve"',
         "Fred", "Zed"]
NER_LABELS = ("PER", "LOC")
CLASS_LABELS = ("neg", "pos", "a|b", "[x]", "🍕")


def _span(text: str, word: str) -> dict[str, Any]:
    start = text.index(word)
    return {"start": start, "end": start + len(word), "label": "PER"}


def _answer(text: str, word: str) -> dict[str, Any]:
    return {"start": text.index(word), "text": word}


def _records(task: str) -> tuple[TaskSettings, list[ImportRecord]]:
    """Return a project's settings and labeled records of the task, the last one empty."""
    pairs = list(zip(TEXTS, WORDS, strict=True))
    if task == "token-classification":
        records = [ImportRecord({"text": t}, {"spans": [_span(t, w)]}) for t, w in pairs]
        records.append(ImportRecord({"text": "no entities here"}, {"spans": []}))
        return TaskSettings(labels=NER_LABELS), records
    if task == "question-answering":
        records = [ImportRecord({"context": t, "question": f"who {i}? 🍕"},
                                {"answers": [_answer(t, w)]}) for i, (t, w) in enumerate(pairs)]
        records.append(ImportRecord({"context": "nobody here", "question": "who?"},
                                    {"answers": []}))
        return TaskSettings(options={"allow_unanswerable": True}), records
    if task == "pair-classification":
        records = [ImportRecord({"text": t, "text_pair": w}, {"label": CLASS_LABELS[i % 5]})
                   for i, (t, w) in enumerate(pairs)]
        return TaskSettings(labels=CLASS_LABELS), records
    # multi-label, so one label set holds a "|", one starts with "[", one is empty
    sets = [["a|b"], ["neg", "a|b"], ["[x]"], ["[x]", "🍕"], ["pos"]]
    records = [ImportRecord({"text": t}, {"labels": sets[i % 5]}) for i, t in enumerate(TEXTS)]
    records.append(ImportRecord({"text": "no label applies"}, {"labels": []}))
    return TaskSettings(labels=CLASS_LABELS, options={"multi_label": True}), records


def _cases() -> list[tuple[str, str]]:
    registry = plugins.registry()
    cases = []
    for task_name in ("text-classification", "pair-classification", "token-classification",
                      "question-answering"):
        for name, exporter in sorted(registry.exporters.items()):
            importer = registry.importers.get(name)
            if importer is None or not all(fmt.tasks is None or task_name in fmt.tasks
                                           for fmt in (exporter, importer)):
                continue
            cases.append((task_name, name))
    return cases


def _content(project: Project, fmt: str) -> list[tuple[str, ...]]:
    # CoNLL has no place for a split: a sentence is a line of tokens
    return sorted((repr(sorted(example.fields.items())), repr(annotation),
                   repr(None if fmt == "conll" else example.split))
                  for example, annotation in project.labeled())


@pytest.mark.parametrize(("task", "fmt"), _cases())
def test_an_exported_file_imports_back_with_every_annotation(tmp_path: Path, task: str,
                                                            fmt: str) -> None:
    settings, records = _records(task)
    if fmt == "conll":  # tokens on lines keep no spacing: texts that survive it unchanged
        records = [r for r in records if r.fields["text"] == " ".join(r.fields["text"].split())
                   and "🍕" not in r.fields["text"] and not r.fields["text"].startswith("我")]
    for i, record in enumerate(records):
        record.split = ("train", "validation", "test", None)[i % 4]
    extension = {"squad": ".json", "conll": ".conll"}.get(fmt, f".{fmt.split('-')[-1]}")
    with Project.create(tmp_path / "first.annotune", task=task, settings=settings,
                        base_model=None) as first:
        first.add_examples(records, source="made")
        exported = tmp_path / f"first{extension}"
        export_data(first, exported, format=fmt)
        expected = _content(first, fmt)
    assert len(expected) == len(records)
    with Project.create(tmp_path / "second.annotune", task=task, settings=settings,
                        base_model=None) as second:
        report = import_file(second, exported, format=fmt)
        assert not report.problems
        assert _content(second, fmt) == expected
        again = tmp_path / f"second{extension}"
        export_data(second, again, format=fmt)
    assert again.read_bytes() == exported.read_bytes()
