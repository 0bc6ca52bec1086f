"""Span JSON lines (doccano, Label Studio shapes): a text and its entity spans per line.

Offsets count characters (code points). Tools written in JavaScript count UTF-16 code units;
the span texts a file carries show which unit it uses (plugins/offsets.py), a file in UTF-16
units is converted and the import report says so, and a span whose text matches neither
reading is refused with the expected and the found text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import (
    ExportRow,
    ImportOptions,
    ImportRecord,
    RowProblem,
    uniform_ids,
)
from annotune.core.formats.files import read_utf8, write_atomic
from annotune.core.tasks import Task, TaskSettings
from annotune.plugins.offsets import (
    CHARACTERS,
    UTF16,
    UTF16_NOTE,
    Utf16Index,
    cut,
    needs_utf16_care,
)
from annotune.plugins.spans import trim_span, validate_spans

NER_TASKS = ("token-classification",)
SPAN_KEYS = ("spans", "entities", "label", "labels")
MIXED = "mixed"  # a file whose span texts confirm both offset units
UTF16_BY_EDGES = "utf-16 by word edges"  # no span texts; only UTF-16 puts spans on word edges
UTF16_EDGES_NOTE = ("span offsets without span texts were read as UTF-16 code units (as "
                    "JavaScript tools count them): read as characters they cut words or "
                    "start or end on a space; check a few of these entities")


def _span_from_item(item: Any) -> dict[str, Any]:
    """Read one span in doccano's or Label Studio's spelling (its ``text`` too, when given)."""
    if isinstance(item, list | tuple) and len(item) == 3:
        return {"start": item[0], "end": item[1], "label": item[2]}
    if isinstance(item, Mapping):
        if isinstance(item.get("value"), Mapping):  # Label Studio result entries
            item = item["value"]
        label = item.get("label")
        if label is None and isinstance(item.get("labels"), list) and len(item["labels"]) == 1:
            label = item["labels"][0]
        start = item.get("start", item.get("start_offset"))
        end = item.get("end", item.get("end_offset"))
        span = {"start": start, "end": end, "label": label}
        if isinstance(item.get("text"), str):
            span["text"] = item["text"]
        return span
    raise AnnotuneError(f"span {item!r} is neither [start, end, type] nor an object",
                        hint='write {"start": 0, "end": 5, "label": "PER"}')


def _jsonl_lines(content: str) -> list[tuple[int, str]]:
    """Number the non-blank lines of a JSON lines file.

    Only "\n" ends a line: JSON writers leave U+2028, U+0085 and friends unescaped inside
    strings, and ``str.splitlines`` would cut a text there.
    """
    return [(number, line.rstrip("\r")) for number, line in
            enumerate(content.split("\n"), start=1) if line.strip()]


def _text_and_items(obj: Any, text_key: str, options: ImportOptions
                    ) -> tuple[str, str | None, list[Any] | None]:
    """Return a line's text, the key of its spans and the raw span items (None: unlabeled)."""
    if not isinstance(obj, Mapping):
        raise AnnotuneError("the line is not a JSON object", hint='write {"text": ...}')
    nested = obj.get("data")  # Label Studio tasks keep the text under "data"
    data = nested if isinstance(nested, Mapping) else obj
    text = data.get(text_key)
    if not isinstance(text, str):
        raise AnnotuneError(f"no text under the key '{text_key}'", where=text_key,
                            hint="name the text key with --map text=KEY")
    key = options.mapping.get("label") or next((k for k in SPAN_KEYS if k in obj), None)
    if key is None or obj.get(key) is None:
        return text, None, None
    items = obj[key]
    if not isinstance(items, list):
        raise AnnotuneError(f"'{key}' holds {type(items).__name__}, not a list of spans",
                            where=key, hint="for labels of whole texts use a "
                                            "text-classification project")
    return text, key, items


def _offset_unit(lines: list[tuple[int, str]], text_key: str, options: ImportOptions) -> str:
    """Tell from the span texts of a file which unit its offsets count.

    Only texts with characters beyond the Basic Multilingual Plane read differently in
    characters and in UTF-16 code units, and only their spans that carry a ``text`` can
    tell; a file says nothing else about it. Offsets are characters unless some span texts
    match only the UTF-16 reading and none match only the character one.
    """
    only_characters = only_utf16 = 0
    edges_characters = edges_utf16 = 0  # spans without text whose edges fit only that reading
    for _, line in lines:
        if line.isascii() and "\\u" not in line:  # no escaped characters: nothing to tell
            continue
        try:
            text, _, items = _text_and_items(json.loads(line), text_key, options)
        except (json.JSONDecodeError, AnnotuneError):
            continue  # reported when the line is read
        if not items or not needs_utf16_care(text):
            continue
        index = Utf16Index(text)
        for item in items:
            try:
                span = _span_from_item(item)
            except AnnotuneError:
                continue
            if "text" not in span:
                converted = index.span(span["start"], span["end"])
                if converted is not None and converted != (span["start"], span["end"]):
                    fits_characters = _on_word_edges(text, span["start"], span["end"])
                    fits_utf16 = _on_word_edges(text, *converted)
                    edges_characters += fits_characters and not fits_utf16
                    edges_utf16 += fits_utf16 and not fits_characters
                continue
            as_characters = cut(text, span["start"], span["end"]) == span["text"]
            converted = index.span(span["start"], span["end"])
            as_utf16 = converted is not None and text[slice(*converted)] == span["text"]
            only_characters += as_characters and not as_utf16
            only_utf16 += as_utf16 and not as_characters
    if only_utf16:
        return MIXED if only_characters else UTF16
    if not only_characters and edges_utf16 and not edges_characters:
        # No span text tells, but read as characters these spans start or end inside a word
        # or on a space ("nna " for "Anna"), and as UTF-16 code units every one of them
        # falls on word edges: a JavaScript tool wrote them.
        return UTF16_BY_EDGES
    return CHARACTERS


def _on_word_edges(text: str, start: object, end: object) -> bool:
    """Tell whether a span starts and ends on word edges, without space at either end."""
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (start, end)):
        return False
    assert isinstance(start, int) and isinstance(end, int)
    if not 0 <= start < end <= len(text) or text[start].isspace() or text[end - 1].isspace():
        return False

    def inside_word(i: int) -> bool:
        return 0 < i < len(text) and text[i - 1].isalnum() and text[i].isalnum()

    return not inside_word(start) and not inside_word(end)


def _read_offsets(text: str, span: dict[str, Any], unit: str, index: Utf16Index | None
                  ) -> bool:
    """Put a span's offsets in characters; return True when they were converted from UTF-16.

    A span's own ``text`` decides (and is dropped once checked); without it the file's unit
    does. A span that matches no reading, or cannot be placed at all, is refused: its
    offsets would mark other characters than the annotator chose.
    """
    stated = span.pop("text", None)
    start, end = span["start"], span["end"]
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (start, end)):
        return False  # validation names the problem
    # the span read as UTF-16 code units; None: that reading cuts a character in two or
    # runs past the text
    as_utf16 = index.span(start, end) if index is not None else (start, end)
    differs = as_utf16 != (start, end)
    utf16_text = text[slice(*as_utf16)] if as_utf16 is not None and differs else None
    name = f"the {span['label']} span" if isinstance(span.get("label"), str) else "the span"
    if stated is not None:
        as_characters = cut(text, start, end)
        if as_characters == stated and not (unit == UTF16 and utf16_text == stated):
            return False
        if as_utf16 is not None and utf16_text == stated:
            span["start"], span["end"] = as_utf16
            return True
        found = "(nothing: it lies outside the text)" if as_characters is None \
            else repr(as_characters)
        also = (f", or {utf16_text!r} if they count UTF-16 code units"
                if utf16_text is not None else "")
        raise AnnotuneError(
            f"{name} at [{start}, {end}) says its text is {stated!r}, but the text there "
            f"reads {found}{also}", where="spans",
            hint="fix the span's offsets or its text: offsets count characters (code points) "
                 "of the text, or UTF-16 code units throughout the file")
    if not differs or unit == CHARACTERS:
        return False
    if unit == MIXED:
        raise AnnotuneError(f"{name} at [{start}, {end}) has no text, and this file's span "
                            "texts show offsets counted both in characters and in UTF-16 "
                            "code units, so its place is unknown", where="spans",
                            hint="give every span its 'text', or write all offsets in one unit")
    if as_utf16 is None:
        raise AnnotuneError(f"{name} at [{start}, {end}) cannot be read as UTF-16 code units, "
                            "as this file's span texts show its offsets are: it cuts a "
                            "character in two or runs past the text", where="spans",
                            hint="fix the span's offsets")
    span["start"], span["end"] = as_utf16
    return True


class SpanJsonlImporter:
    """Read JSON lines with a text and its entity spans (doccano / Label Studio shapes).

    Offsets count characters; a file whose span texts show UTF-16 code units (JavaScript
    tools) is converted, and the import report says so. Spans whose ``text`` matches
    neither reading are refused with the expected and the found text.
    """

    name = "spans-jsonl"
    title = "JSON lines with entity spans (doccano, Label Studio)"
    extensions = (".jsonl",)
    tasks = NER_TASKS
    maps_columns = True  # the text, label, split and id keys may be chosen (--map)

    def objects(self, path: Path) -> tuple[list[str], list[tuple[int, Any]]]:
        """Return the keys seen and each line's object, as plain JSON lines (for previews)."""
        from annotune.core.formats.tabular import JsonlImporter

        return JsonlImporter().objects(path)

    def read(self, path: Path, task: Task, settings: TaskSettings, options: ImportOptions
             ) -> Iterator[ImportRecord | RowProblem]:
        text_key = options.mapping.get("text", "text")
        lines = _jsonl_lines(read_utf8(Path(path), "a JSON lines file"))
        unit = _offset_unit(lines, text_key, options)
        for number, line in lines:
            try:
                yield self._record(json.loads(line), number, text_key, settings, options, unit)
            except json.JSONDecodeError as error:
                yield RowProblem(number, f"not valid JSON ({error.msg}, column {error.colno})",
                                 hint="write one JSON object per line")
            except AnnotuneError as error:
                yield RowProblem(number, error.what, field=error.where, hint=error.hint)

    @staticmethod
    def _record(obj: Any, number: int, text_key: str, settings: TaskSettings,
                options: ImportOptions, unit: str = CHARACTERS) -> ImportRecord:
        text, _, items = _text_and_items(obj, text_key, options)
        annotation, notes = None, []
        if items is not None:
            index = Utf16Index(text) if needs_utf16_care(text) else None
            spans, converted = [], 0
            for item in items:
                span = _span_from_item(item)
                converted += _read_offsets(text, span, unit, index)
                if isinstance(span["start"], int) and isinstance(span["end"], int):
                    span["start"], span["end"] = trim_span(text, span["start"], span["end"])
                spans.append(span)
            annotation = {"spans": validate_spans(spans, text, settings.labels or None)}
            if converted:
                notes.append(UTF16_EDGES_NOTE if unit == UTF16_BY_EDGES else UTF16_NOTE)
        split = options.split or obj.get(options.mapping.get("split", "split"))
        source_id = obj.get(options.mapping.get("id", "id"))
        return ImportRecord(fields={"text": text}, annotation=annotation,
                            split=split if isinstance(split, str) else None, line=number,
                            source_id=None if source_id is None else str(source_id),
                            notes=notes)


class SpanJsonlExporter:
    """Write ``{"id", "text", "spans": [{"start","end","label","text"}], "split"}`` lines."""

    name = "spans-jsonl"
    title = "JSON lines with entity spans"
    extensions = (".jsonl",)
    tasks = NER_TASKS

    def write(self, path: Path, task: Task, rows: Iterable[ExportRow]) -> int:
        lines = []
        rows = list(rows)
        for row, row_id in zip(rows, uniform_ids([row.id for row in rows]), strict=True):
            text = row.fields.get("text", "")
            spans = [{"start": s["start"], "end": s["end"], "label": s["label"],
                      "text": text[s["start"]:s["end"]]}
                     for s in row.annotation.get("spans", [])]
            lines.append(json.dumps({"id": row_id, "text": text, "spans": spans,
                                     "split": row.split}, ensure_ascii=False) + "\n")
        write_atomic(Path(path), lambda out: out.write("".join(lines)))
        return len(lines)
