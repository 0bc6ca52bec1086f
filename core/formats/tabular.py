"""Table-like files for every task: CSV, TSV, JSON Lines and plain text (one example per line).

Columns (or JSONL keys) feed the task's fields through ``ImportOptions.mapping``; unmapped
fields fall back to a same-name column, then to well-known names (GLUE's ``sentence``,
``sentence1``/``sentence2``...). A label column becomes an annotation through
``task.annotation_from_value`` and ``task.validate``. Importers never raise for one bad row:
they yield a RowProblem and core.formats.importing decides what happens.

The delimiter comes from the content (``sniffing.sniff_table``): a ``;``-separated file
named ``.tsv`` is read with ``;`` and the import says so; force one with ``--map
delimiter=;`` (or ``tab``, ``,``, ``|``). TSV quoting is chosen per file: GLUE's SST-2 has stray
quote marks and must be read without quoting, while RTE quotes fields CSV-style.
``detect_quoting`` tells them apart; force it with ``--map quoting=csv`` or ``--map
quoting=none``.

Nothing in a file is dropped without a word: columns (JSONL keys) that feed nothing are
counted and named in a note at the end of the file, and a project with labels is warned when
the file has no label column (every row would come in unlabeled).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.formats import files, sniffing
from annotune.core.formats.base import (
    ExportRow,
    ImportNote,
    ImportOptions,
    ImportRecord,
    RowProblem,
    uniform_ids,
)
from annotune.core.hookspecs import hookimpl
from annotune.core.tasks import Task, TaskSettings

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents exceed the 128 KiB default

OTHER_FORMATS = "export it as UTF-8 CSV, TSV, JSON Lines or plain text"
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation",
               "valid": "validation", "val": "validation", "dev": "validation", "test": "test"}
# Well-known column names per task field, tried after a same-name column.
SINGLE_TEXT_ALIASES = ("text", "sentence", "content", "review", "document")
PAIR_ALIASES = {"text": ("sentence1", "premise", "question1", "text_a"),
                "text_pair": ("sentence2", "hypothesis", "question2", "text_b")}
SPECIAL_TARGETS = {"label": ("label", "labels"), "split": ("split",), "id": ("id", "idx")}
# Column names that make a first line a header when sniffing a file's format.
KNOWN_COLUMNS = (*SINGLE_TEXT_ALIASES, *(n for names in PAIR_ALIASES.values() for n in names),
                 *(n for names in SPECIAL_TARGETS.values() for n in names),
                 "text_pair", "context", "question", "answers", "spans", "entities")
# ``--map`` keys that are reading options, not columns (scheme is CoNLL's).
OPTION_KEYS = ("quoting", "delimiter", "scheme")
QUOTING_CHOICES = ("auto", "csv", "none")
DELIMITER_CHOICES = {",": ",", "comma": ",", ";": ";", "semicolon": ";", "|": "|",
                     "bar": "|", "tab": "\t", "\\t": "\t", "\t": "\t"}
QUOTE_HINT = ('close the quote mark, or write a quote inside a quoted cell twice (""); if the '
              "file's quote marks are plain text, read them so with --map quoting=none")
DEFAULT_OPTIONS = ImportOptions()  # frozen, so one shared default is safe
# Label cells cached by value (a tuple: isinstance with ``str | int | float`` would build the
# union object again for every row).
LABEL_CELLS = (str, int, float)
# What json.loads runs once its per-call checks are done (public: JSONDecoder.raw_decode);
# JSON's own whitespace.
_decode_json = json.JSONDecoder().raw_decode
JSON_WHITESPACE = " \t\n\r"


# -- reading raw text ----------------------------------------------------------------------------
def read_utf8(path: Path, what: str) -> str:
    """Read a whole file as UTF-8; a binary file is told which formats annotune reads."""
    return files.read_utf8(path, what, hint=OTHER_FORMATS)


lines = files.split_lines  # CRLF, LF or a lone CR; never U+2028 (text inside JSON strings)


def loads_line(raw: str) -> Any:
    """Parse one JSON Lines line exactly as ``json.loads`` does, twice as fast on plain lines.

    json.loads spends half its time on checks (type, BOM, whitespace around the value) that a
    line starting with its value needs once; anything else (leading whitespace, a BOM, extra
    data, an error) is handed to json.loads itself for its exact result or message.
    """
    try:
        value, end = _decode_json(raw)
    except ValueError:
        return json.loads(raw)
    if end != len(raw) and raw[end:].strip(JSON_WHITESPACE):
        return json.loads(raw)  # extra data after the value: json.loads says where
    return value


def detect_quoting(text: str, delimiter: str = "\t") -> int:
    """Return csv.QUOTE_MINIMAL when the file quotes fields CSV-style, else csv.QUOTE_NONE.

    Reading each line as-is is right unless quoting is really used: then every line-based row
    already has the header's width (quoted fields rarely hold the delimiter) and CSV parsing
    keeps the row count while removing quotes. Stray quote marks, as in SST-2, make CSV parsing
    swallow lines (fewer rows) or fail; a quoted field with a line break makes line-based rows
    ragged, which only CSV parsing repairs.
    """
    plain = list(csv.reader(io.StringIO(text), delimiter=delimiter, quoting=csv.QUOTE_NONE))
    plain = [row for row in plain if row]
    if not plain or '"' not in text:
        return csv.QUOTE_NONE
    width = len(plain[0])
    plain_ok = all(len(row) == width for row in plain)
    try:
        quoted = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
                  if row]
        quoted_ok = all(len(row) == width for row in quoted)
    except csv.Error:
        quoted, quoted_ok = [], False
    if quoted_ok and not plain_ok:
        return csv.QUOTE_MINIMAL
    if plain_ok and quoted_ok and len(quoted) == len(plain) and quoted != plain:
        return csv.QUOTE_MINIMAL
    return csv.QUOTE_NONE


def _delimiter_option(options: ImportOptions) -> str | None:
    """Return the delimiter forced with ``--map delimiter=X``, or None to follow the content."""
    given = options.mapping.get("delimiter")
    if given is None:
        return None
    chosen = DELIMITER_CHOICES.get(given.strip().lower() if given.strip() else given)
    if chosen is None:
        raise AnnotuneError(f"unknown delimiter '{given}'",
                            hint="use one of: comma (,), semicolon (;), tab, bar (|)")
    return chosen


def _quoting_option(options: ImportOptions, forced: str | None) -> str:
    choice = forced or options.mapping.get("quoting") or getattr(options, "quoting", None)
    choice = (choice or "auto").lower()
    if choice not in QUOTING_CHOICES:
        raise AnnotuneError(f"unknown quoting '{choice}'",
                            hint=f"use one of: {', '.join(QUOTING_CHOICES)}")
    return choice


# -- columns to fields ---------------------------------------------------------------------------
def _find(columns: list[str], names: Iterable[str]) -> str | None:
    # Case and spaces around a name do not matter: " Label" is the label column.
    lowered = {column.strip().lower(): column for column in columns}
    for name in names:
        if name in columns:
            return name
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _targets(task: Task) -> dict[str, tuple[str, ...]]:
    """Return the column names tried for label, split and id in a file of this task.

    The label candidates are the task's own (``Task.annotation_columns``: "answers" for
    question answering, "spans" for entities), so a CSV or JSONL data export reads back with
    its annotations. A task that reads no label cell (no ``annotation_from_value`` of its
    own) and needs no labels takes no label column.
    """
    reads_cells = type(task).annotation_from_value is not Task.annotation_from_value
    label = task.annotation_columns if (task.needs_labels or reads_cells) else ()
    return {**SPECIAL_TARGETS, "label": label}


def resolve_columns(columns: list[str], task: Task, options: ImportOptions, path: Path,
                    notes: list[ImportNote] | None = None) -> dict[str, str]:
    """Map each task field (and label, split, id when present) to a column of the file.

    ``notes`` receives what a user should know about a choice made without a name to go
    by (a text column taken because it is the only one).
    """
    mapping = {k: v for k, v in options.mapping.items() if k not in OPTION_KEYS}
    shown = ", ".join(repr(c) for c in columns) or "none"
    targets = (*task.fields, *SPECIAL_TARGETS)
    for target in mapping:
        if target not in targets:
            raise AnnotuneError(f"--map {target}=... names no field of the {task.title} task",
                                where=str(path),
                                hint=f"map one of: {', '.join(targets)} (or set "
                                     f"{', '.join(OPTION_KEYS[:2])})")
    resolved: dict[str, str] = {}
    for target, column in mapping.items():
        if column not in columns:
            raise AnnotuneError(f"column '{column}' (mapped to '{target}') is not in the file",
                                where=str(path),
                                hint=f"the file has columns {shown}; fix --map {target}=COLUMN")
        resolved[target] = column
    special = {c for names in _targets(task).values() for c in names}
    for name in task.fields:
        if name in resolved:
            continue
        candidates = [name]
        if len(task.fields) == 1:
            candidates += SINGLE_TEXT_ALIASES
        candidates += PAIR_ALIASES.get(name, ()) if len(task.fields) == 2 else ()
        found = _find(columns, candidates)
        if found is None and len(task.fields) == 1:
            # A single-text file with one ordinary column besides label/split/id needs no map.
            ordinary = [c for c in columns if c.strip().lower() not in special]
            found = ordinary[0] if len(ordinary) == 1 else None
            if found is not None and notes is not None:
                notes.append(ImportNote(
                    f"the texts are read from column '{found}', the only column besides "
                    f"label, split and id; if the file has no header line, its first line was "
                    f"taken as one: add a header line (e.g. '{name}')"))
        if found is None:
            raise AnnotuneError(
                f"column '{name}' not found (it feeds the field '{name}' of the {task.title} "
                f"task)", where=str(path),
                hint=f"the file has columns {shown}; choose one with --map {name}=COLUMN")
        resolved[name] = found
    for target, names in _targets(task).items():
        if target in resolved or not names:
            continue
        found = _find(columns, names)
        if found is not None and found not in resolved.values():
            resolved[target] = found
    return resolved


def _cell_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class RecordMaker:
    """Turn the rows of one file into ImportRecords (or RowProblems), a million times over.

    The columns are resolved once per file, and for tasks whose annotations are labels
    (``annotation_kind == "label"``: the annotation depends on the cell alone, never on the
    texts) each distinct label cell is converted and validated once, then reused. It counts
    what it did not use, for ``notes`` at the end of the file.
    """

    def __init__(self, columns: dict[str, str], task: Task, settings: TaskSettings,
                 options: ImportOptions, fmt: str):
        self.task, self.settings, self.fmt = task, settings, fmt
        self.fields = [(name, columns[name]) for name in task.fields]
        self.label = columns.get("label")
        self.split_column = None if options.split is not None else columns.get("split")
        self.ignored_split = columns.get("split") if options.split is not None else None
        self.forced_split = options.split
        self.id = columns.get("id")
        self.used = set(columns.values())
        self.labels: dict[Any, tuple[Any, str | None]] | None = \
            {} if task.annotation_kind == "label" else None
        self.made = 0  # records returned (rows without problems)
        self.unused: Counter[str] = Counter()  # column -> rows that had it, unused

    def notes(self, columns: list[str], word: str = "column") -> list[ImportNote]:
        """Say what the file held that no record carries: call once the rows are read."""
        notes = []
        task, settings = self.task, self.settings
        if self.label is None and task.needs_labels and settings.labels and self.made:
            notes.append(ImportNote(
                f"no label {word} found ({word}s: {', '.join(columns)}); {self.made:,} rows "
                f"come without labels; map one with --map label={word.upper()}", warning=True))
        if self.ignored_split is not None:
            notes.append(ImportNote(
                f"{word} '{self.ignored_split}' (the split) was not read: --split puts every "
                f"row into {self.forced_split}"))
        if self.unused:
            listed = ", ".join(f"'{name}' ({count:,} rows)"
                               for name, count in self.unused.most_common())
            notes.append(ImportNote(
                f"{word}s that feed nothing of the {task.title} task: {listed}; kept with each "
                f"example, not used as text or label (map one with --map FIELD={word.upper()})"))
        return notes

    def _annotation(self, value: Any, fields: dict[str, str]) -> tuple[Any, str | None]:
        """Return (annotation, None) or (error message, hint) for one label cell."""
        task, settings = self.task, self.settings
        try:
            if isinstance(value, dict):  # JSONL may carry the annotation object itself
                annotation = dict(value)
            else:
                annotation = task.annotation_from_value(value, settings)
            return task.validate(annotation, fields, settings), None
        except AnnotuneError as error:
            allowed = ", ".join(settings.labels)
            return error.what, error.hint or (f"allowed labels: {allowed}" if allowed else None)

    def __call__(self, line: int, row: dict[str, Any]) -> ImportRecord | RowProblem:
        fields: dict[str, str] = {}
        for name, column in self.fields:
            if column not in row:
                return RowProblem(line, f"the key '{column}' is missing", field=name,
                                  hint=f"give every line a '{column}' key, or map another one")
            text = row[column]
            if type(text) is not str:
                text = _cell_text(text)
                if text is None:
                    return RowProblem(line, f"'{column}' holds {type(row[column]).__name__}, "
                                      "not text", field=name, hint="write the text as a string")
            if not text.strip():
                return RowProblem(line, f"the text in column '{column}' is empty", field=name,
                                  hint="fill it in, or drop the row (or use --skip-bad-rows)")
            fields[name] = text
        annotation = None
        value = row.get(self.label) if self.label is not None else None
        if value is not None and not (isinstance(value, str) and not value.strip()):
            cache, key = self.labels, None
            if cache is not None and isinstance(value, LABEL_CELLS):
                key = (type(value), value)  # True == 1, but not as a label cell
            found = cache.get(key) if key is not None else None  # type: ignore[union-attr]
            if found is None:
                found = self._annotation(value, fields)
                if key is not None:
                    cache[key] = found  # type: ignore[index]
            annotation, hint = found
            if hint is not None or isinstance(annotation, str):
                return RowProblem(line, annotation, field="label", hint=hint)
            if key is not None:
                annotation = dict(annotation)  # each record owns its annotation
        split = self.forced_split
        split_column = self.split_column
        if split_column is not None and not _is_blank(row.get(split_column)):
            given = str(row[split_column]).strip()
            split = SPLIT_NAMES.get(given.lower())
            if split is None:
                return RowProblem(line, f"unknown split '{given}'", field="split",
                                  hint="use train, validation (or dev) or test")
        source_id = None
        if self.id is not None and not _is_blank(row.get(self.id)):
            source_id = str(row[self.id])
        meta: dict[str, Any] = {"format": self.fmt}
        if not self.used.issuperset(row):
            meta["extra"] = extra = {k: v for k, v in row.items() if k not in self.used}
            self.unused.update(extra.keys())
        self.made += 1
        # Positional: a dataclass takes them in half the time of keywords (a million rows).
        # The order is ImportRecord's: fields, annotation, split, line, source_id, meta.
        return ImportRecord(fields, annotation, split, line, source_id, meta)


# -- importers -----------------------------------------------------------------------------------
@dataclass
class Table:
    """A delimited file read up to its header: the rows still to come, and how it was read."""

    header: list[str]
    # (first line number, cells) of each row; cells is a message for a row that is bad
    rows: Iterator[tuple[int, list[str] | str]]
    delimiter: str
    note: ImportNote | None = None  # the delimiter differs from the format's own


class DelimitedImporter:
    """CSV or TSV with a header row; the delimiter and TSV quoting are detected per file.

    The format's own delimiter is used when the first lines make a table with it; otherwise
    the one delimiter (comma, tab, semicolon, vertical bar) that does, with a note.
    """

    tasks = None
    validates = True  # RecordMaker validates every annotation with the task
    maps_columns = True  # its named columns/keys feed the task's fields (--map, Columns)

    def __init__(self, name: str, title: str, extensions: tuple[str, ...], delimiter: str,
                 claims: tuple[str, ...]):
        self.name, self.title, self.extensions, self.delimiter = name, title, extensions, delimiter
        self.claims = claims  # the delimiters that make a file this format when sniffed

    def sniff(self, head: sniffing.FileHead) -> str | None:
        """Claim a table whose header names a known column, separated as this format is."""
        table = sniffing.sniff_table(head.lines, self.delimiter)
        if table is None or table.delimiter not in self.claims or \
                not sniffing.names_known_column(table, KNOWN_COLUMNS):
            return None
        where = ("its first line" if not head.lines or sniffing.declared_delimiter(head.lines[0])
                 is None else f"below its 'sep={table.delimiter}' line, its second line")
        return (f"{where} is a header ({', '.join(table.header)}) with "
                f"{sniffing.delimiter_name(table.delimiter)} between columns")

    def _delimiter(self, path: Path, text: str, options: ImportOptions
                   ) -> tuple[str, ImportNote | None]:
        forced = _delimiter_option(options)
        if forced is not None:
            return forced, None
        declared = sniffing.declared_delimiter(lines(text[:80])[0] if text else "")
        if declared is not None:  # the file's own "sep=;" line says it
            return declared, None
        table = sniffing.sniff_table(lines(text[:sniffing.HEAD_BYTES])[:sniffing.MAX_LINES],
                                     self.delimiter)
        if table is None or table.delimiter in (self.delimiter, *self.claims):
            return self.delimiter if table is None else table.delimiter, None
        found, own = (sniffing.delimiter_name(d) for d in (table.delimiter, self.delimiter))
        return table.delimiter, ImportNote(
            f"reading {path.name} with {found} between columns, not {own}: its header splits "
            f"into {len(table.header)} columns at {found} ({', '.join(table.header)}) and the "
            f"rows below agree; force another with --map delimiter=...")

    def table(self, path: Path, options: ImportOptions = DEFAULT_OPTIONS,
              quoting: str | None = None) -> Table:
        """Read the header; return it with an iterator of the rows and the delimiter used."""
        text = read_utf8(path, f"a {self.title} file")
        delimiter, note = self._delimiter(path, text, options)
        choice = _quoting_option(options, quoting)
        if choice == "auto":
            mode = csv.QUOTE_MINIMAL if delimiter == "," else detect_quoting(text, delimiter)
        else:
            mode = csv.QUOTE_MINIMAL if choice == "csv" else csv.QUOTE_NONE
        # strict: a quote mark that opens a cell and is never closed properly must be a bad
        # row; the lenient reader made the lines up to the next quote mark (or the end of
        # the file) one cell, and the rows in them vanished without a word
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                            quoting=mode, strict=True)  # type: ignore[arg-type]  # a QUOTE_*
        header: list[str] | None = None
        declares = sniffing.declared_delimiter(lines(text[:80])[0] if text else "")
        try:
            if declares is not None:
                next(reader)  # "sep=;" above the header: the delimiter was taken from it
            for header in reader:
                if header:
                    break
        except csv.Error as error:
            raise AnnotuneError(f"the header line's quote marks do not pair up ({error})",
                                where=f"{path}:{reader.line_num}", hint=QUOTE_HINT) from None
        if not header:
            raise AnnotuneError("the file is empty", where=str(path),
                                hint="the first line must name the columns")
        at_header = f"{path}:{reader.line_num}"
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise AnnotuneError(f"the header names a column twice: {', '.join(duplicates)}",
                                where=at_header, hint="give every column its own name")
        if header[0].lstrip().startswith(("{", "[")):
            raise AnnotuneError(f"the first line looks like JSON, not a {self.title} header",
                                where=at_header, hint="import it with --format jsonl")
        others = [d for d in sniffing.DELIMITERS if d != delimiter and d in header[0]]
        if len(header) == 1 and others and _delimiter_option(options) is None:
            # The rows did not agree with any delimiter, so nothing was followed: say why.
            names = " or ".join(sniffing.delimiter_name(d) for d in others)
            raise AnnotuneError(
                f"the header is one column that contains {names}, but the rows below do not "
                f"split into as many columns: the delimiter is unclear", where=at_header,
                hint="check the file's delimiter and quote marks, or force one with "
                     "--map delimiter=...")

        def rows() -> Iterator[tuple[int, list[str] | str]]:
            start = reader.line_num + 1
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:  # (line, why): the row is bad
                    end = reader.line_num
                    lines = f"lines {start}–{end}" if end > start else f"line {start}"
                    yield start, (f"a quoted cell opened on this line is not closed properly "
                                  f"({error}): {lines} would read as one cell")
                    start = reader.line_num + 1
                    continue
                if cells:
                    yield start, cells
                start = reader.line_num + 1

        return Table(list(header), rows(), delimiter, note)

    def read(self, path: Path, task: Task, settings: TaskSettings,
             options: ImportOptions = DEFAULT_OPTIONS, quoting: str | None = None
             ) -> Iterator[ImportRecord | RowProblem | ImportNote]:
        table = self.table(path, options, quoting)
        header = table.header
        notes: list[ImportNote] = [table.note] if table.note else []
        make = RecordMaker(resolve_columns(header, task, options, path, notes), task, settings,
                           options, self.name)
        yield from notes
        width = len(header)
        for line, cells in table.rows:
            if isinstance(cells, str):
                yield RowProblem(line, cells, hint=QUOTE_HINT)
                continue
            if len(cells) != width:
                yield RowProblem(line, f"expected {width} columns but found {len(cells)}",
                                 hint="check the delimiter and quote marks of this line")
                continue
            yield make(line, dict(zip(header, cells, strict=True)))
        yield from make.notes(header)


def _escape_problem(line: int, value: Any) -> RowProblem | None:
    """Find a lone surrogate or a NUL in any string of a parsed JSON line (keys, nested too)."""
    stack = [(None, value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, str):
            problem = files.text_problem(item)
            if problem is not None:
                return RowProblem(line, problem[0], field=key, hint=problem[1])
        elif isinstance(item, dict):
            for name, inner in item.items():
                stack.append((name, name))
                stack.append((name if key is None else key, inner))
        elif isinstance(item, list):
            stack.extend((key, inner) for inner in item)
    return None


class JsonlImporter:
    """One JSON object per line; a label may be a name, an index or a list (multi-label)."""

    name, title, extensions, tasks = "jsonl", "JSON Lines", (".jsonl", ".ndjson"), None
    validates = True  # RecordMaker validates every annotation with the task
    maps_columns = True  # its named columns/keys feed the task's fields (--map, Columns)

    @staticmethod
    def sniff(head: sniffing.FileHead) -> str | None:
        """Claim files whose first lines are JSON objects."""
        return sniffing.json_objects(head)

    def objects(self, path: Path) -> tuple[list[str], list[tuple[int, Any]]]:
        """Return every key seen (first-seen order) and (line, object, error text or problem).

        A line whose JSON escapes leave half a surrogate pair ("\\ud83c" alone) or a NUL
        ("\\u0000") is a RowProblem: such a string is not text (``files.text_problem``).
        """
        text = read_utf8(path, "a JSON Lines file")
        if text.lstrip().startswith("["):
            raise AnnotuneError("the file holds a JSON array, not JSON Lines", where=str(path),
                                hint="write one JSON object per line (e.g. `jq -c '.[]' "
                                     "file.json > file.jsonl`)")
        keys: dict[str, None] = {}
        seen = keys.keys()  # a live view: no new view object per line
        items: list[tuple[int, Any]] = []
        append = items.append
        for number, raw in enumerate(lines(text), start=1):
            if not raw or raw.isspace():  # what `not raw.strip()` tells, without a copy
                continue
            try:
                value = loads_line(raw)
            except json.JSONDecodeError as error:
                value = f"invalid JSON: {error.msg} (column {error.colno})"
            else:
                if isinstance(value, dict):  # the usual line: done with it here
                    if not seen >= value.keys():
                        keys.update(dict.fromkeys(value))
                    # Only an escape can make a surrogate or a NUL: the file itself is
                    # valid UTF-8 without NUL bytes.
                    if "\\u" in raw and (problem := _escape_problem(number, value)):
                        value = problem
                    append((number, value))
                    continue
                value = f"expected a JSON object, found {type(value).__name__}"
            if not items:
                raise AnnotuneError(f"the first line is not a JSON object ({value}): this does "
                                    "not look like JSON Lines", where=f"{path}:{number}",
                                    hint=f"give one JSON object per line, or {OTHER_FORMATS}")
            append((number, value))
        if not items:
            raise AnnotuneError("the file is empty", where=str(path),
                                hint="write one JSON object per line")
        return list(keys), items

    def read(self, path: Path, task: Task, settings: TaskSettings,
             options: ImportOptions = DEFAULT_OPTIONS
             ) -> Iterator[ImportRecord | RowProblem | ImportNote]:
        keys, items = self.objects(path)
        notes: list[ImportNote] = []
        make = RecordMaker(resolve_columns(keys, task, options, path, notes), task, settings,
                           options, self.name)
        yield from notes
        for line, value in items:
            if isinstance(value, str):
                yield RowProblem(line, value, hint="write one JSON object per line")
            elif isinstance(value, RowProblem):
                yield value
            else:
                yield make(line, value)
        yield from make.notes(keys, "key")


class TxtImporter:
    """Plain text: every non-empty line is one example of a single-text task."""

    name, title, extensions, tasks = "txt", "plain text", (".txt",), None

    def read(self, path: Path, task: Task, settings: TaskSettings,
             options: ImportOptions = DEFAULT_OPTIONS
             ) -> Iterator[ImportRecord | RowProblem | ImportNote]:
        if len(task.fields) != 1:
            raise AnnotuneError(
                f"a text file holds one text per line, but the {task.title} task needs the "
                f"fields {', '.join(task.fields)}", where=str(path),
                hint="import a CSV, TSV or JSON Lines file with one column per field")
        text = read_utf8(path, "a text file")
        count = tabbed = 0
        for number, raw in enumerate(lines(text), start=1):
            if raw.strip():
                count += 1
                tabbed += "\t" in raw
                yield ImportRecord(fields={task.fields[0]: raw}, split=options.split,
                                   line=number, meta={"format": self.name})
        if tabbed * 2 > count:  # a table whose header names no column annotune knows
            yield ImportNote(f"{tabbed:,} of {count:,} lines hold tab characters and were "
                             "imported whole, tabs included: if the file is a table, import it "
                             "with --format tsv (its first line naming the columns)",
                             warning=True)


# -- exporters -----------------------------------------------------------------------------------
def export_records(task: Task, rows: Iterable[ExportRow]) -> tuple[list[str], list[dict]]:
    """Flatten rows into records that all have the same keys (absent values are None).

    The id is the one the example's file gave it, else the example's own number.
    """
    records = []
    for row in rows:
        record: dict[str, Any] = {"id": row.id}
        record.update({name: row.fields.get(name) for name in task.fields})
        if row.status == "accepted" and row.annotation:
            record.update(task.annotation_to_record(row.annotation))
        record["split"] = row.split
        record["status"] = row.status
        records.append(record)
    for record, uniform in zip(records, uniform_ids([r["id"] for r in records]), strict=True):
        record["id"] = uniform
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    order = [k for k in keys if k not in ("split", "status")] + ["split", "status"]
    return order, [{key: record.get(key) for key in order} for record in records]


class JsonlExporter:
    """JSON Lines with the same keys and types on every line (loadable by `datasets`)."""

    name, title, extensions, tasks = "jsonl", "JSON Lines", (".jsonl",), None

    def write(self, path: Path, task: Task, rows: Iterable[ExportRow]) -> int:
        _, records = export_records(task, rows)

        def dump(out: Any) -> None:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")

        files.write_atomic(path, dump)
        return len(records)


def _joinable(item: Any) -> bool:
    """True when a list item reads back from an "a|b" cell unchanged (else: a JSON list)."""
    if isinstance(item, int) and not isinstance(item, bool):
        return True
    return isinstance(item, str) and "|" not in item and item == item.strip() and item != ""


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    # An empty list is an answer ("no entities", "unanswerable", the empty label set): an
    # empty cell would read back as "not labeled yet".
    if isinstance(value, list | tuple) and value and all(_joinable(v) for v in value) \
            and not str(value[0]).startswith("["):
        return "|".join(str(v) for v in value)  # multi-label: the importer reads a|b back
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


class CsvExporter:
    """CSV with a header row (readable by pandas and spreadsheets); label lists joined by |."""

    name, title, extensions, tasks = "csv", "CSV", (".csv",), None

    def write(self, path: Path, task: Task, rows: Iterable[ExportRow]) -> int:
        keys, records = export_records(task, rows)

        def dump(out: Any) -> None:
            writer = csv.writer(out)
            writer.writerow(keys)
            for record in records:
                writer.writerow([_csv_cell(record[key]) for key in keys])

        files.write_atomic(path, dump)
        return len(records)


# Semicolons and vertical bars are CSV's family (spreadsheets in many locales write ";").
CSV = DelimitedImporter("csv", "CSV", (".csv",), ",", claims=(",", ";", "|"))
TSV = DelimitedImporter("tsv", "TSV", (".tsv", ".tab"), "\t", claims=("\t",))
JSONL = JsonlImporter()
TXT = TxtImporter()


@hookimpl
def register_formats(register: Callable[[Any], None]) -> None:
    """Register the CSV, TSV, JSONL and TXT importers and the JSONL and CSV exporters."""
    for fmt in (CSV, TSV, JSONL, TXT, JsonlExporter(), CsvExporter()):
        register(fmt)
