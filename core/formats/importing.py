"""Import a file into a project, preview one for the import dialog, export annotated data.

An import streams the file's records into one ``Project.add_examples`` transaction (the store
writes one chunk while the next is read). Any bad row aborts it with an error that names the
file, line and field, raised once the whole file was read and before the commit, so a failed
import leaves the project as it was; with ``skip_bad_rows`` every skipped row is listed in the
report instead. Duplicates (same task fields) are counted and reported.

The format comes from the extension unless the content says otherwise: importers that can
recognise their format (``sniff``) are asked about the first lines, and a file named
``train.txt`` whose lines are CoNLL token columns is read as CoNLL, with a note that says so and
how to get the other reading (or refused, when the project's task cannot take that format).
Notes (``ImportNote``) from the choice and from the importer reach the report and the preview.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annotune.core import plugins
from annotune.core.errors import AnnotuneError, where
from annotune.core.formats import files, sniffing
from annotune.core.formats.base import (
    ExportRow,
    ImportNote,
    ImportOptions,
    ImportRecord,
    RowProblem,
    serves,
)
from annotune.core.formats.tabular import SPLIT_NAMES, resolve_columns
from annotune.core.tasks import Task, TaskSettings

DEFAULT_OPTIONS = ImportOptions()
SKIP_HINT = "fix the file, or pass --skip-bad-rows to import the other rows"


@dataclass
class ImportReport:
    """What an import did: counts, duplicates and (with skip_bad_rows) the rows it skipped."""

    path: Path
    format: str
    rows: int = 0  # examples and bad rows read from the file
    added: int = 0
    annotated: int = 0
    duplicates: int = 0
    duplicate_lines: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)  # the skipped rows
    notes: list[ImportNote] = field(default_factory=list)  # format choice, unused columns...
    row_notes: dict[str, list[int]] = field(default_factory=dict)  # a record's note → its lines

    @property
    def skipped(self) -> list[str]:
        """One printable line per skipped row: ``file:line (field 'x'): problem — hint``."""
        return [describe(self.path, problem) for problem in self.problems]

    @property
    def note_lines(self) -> list[str]:
        """One printable line per note on rows: what the importer did, how often, which lines."""
        lines = []
        for note, numbers in self.row_notes.items():
            shown = ", ".join(str(n) for n in numbers[:10])
            more = ", ..." if len(numbers) > 10 else ""
            rows = f"{len(numbers)} rows (lines" if len(numbers) > 1 else "1 row (line"
            lines.append(f"{note} on {rows} {shown}{more})")
        return lines

    def __str__(self) -> str:
        text = (f"imported {self.added} examples ({self.annotated} labeled) from {self.path} "
                f"[{self.format}]")
        if self.duplicates:
            lines = ", ".join(str(n) for n in self.duplicate_lines[:10])
            more = ", ..." if len(self.duplicate_lines) > 10 else ""
            text += (f"; {self.duplicates} duplicates of existing examples not added "
                     f"(lines {lines}{more})")
        if self.problems:
            text += f"; {len(self.problems)} bad rows skipped"
        for line in self.note_lines:
            text += f"; {line}"
        return text


@dataclass
class Preview:
    """The first rows of a file as the import dialog shows them, and what an import would do."""

    columns: list[str]  # the file's columns (JSONL: keys), in file order
    rows: list[dict[str, Any]]  # the first raw rows, column → cell
    problems: list[RowProblem]  # every bad row in the file
    total: int  # rows in the file (examples and bad rows)
    records: list[ImportRecord] = field(default_factory=list)  # the first rows, as imported
    mapping: dict[str, str] = field(default_factory=dict)  # field/label/split/id → column used
    format: str = ""
    error: str | None = None  # why the file cannot be imported as it stands (e.g. no column)
    notes: list[ImportNote] = field(default_factory=list)  # what an import would say besides
    # the file line each of ``rows`` starts on: what problems name, so the preview can too
    lines: list[int] = field(default_factory=list)


def describe(path: Path, problem: RowProblem) -> str:
    text = f"{where(path, problem.line, problem.field)}: {problem.message}"
    return f"{text} — {problem.hint}" if problem.hint else text


# -- choosing a format -----------------------------------------------------------------------
def _named(formats: dict[str, Any], task: Task, format: str, role: str) -> Any:
    if format not in formats:
        known = ", ".join(sorted(n for n, f in formats.items() if serves(f, task)))
        raise AnnotuneError(f"unknown {role} format '{format}'", hint=f"choose one of: {known}")
    chosen = formats[format]
    if not serves(chosen, task):
        raise AnnotuneError(f"the {format} format does not serve {task.title} projects",
                            hint=f"it serves: {', '.join(chosen.tasks)}")
    return chosen


def _choose(formats: dict[str, Any], path: Path, task: Task, format: str | None,
            role: str) -> Any:
    if format is not None:
        return _named(formats, task, format, role)
    suffix = path.suffix.lower()
    candidates = [f for f in formats.values() if serves(f, task) and suffix in f.extensions]
    # A format written for this task (span JSONL for NER) beats a generic one (plain JSONL).
    specific = [f for f in candidates if f.tasks is not None]
    candidates = specific or candidates
    names = ", ".join(sorted(n for n, f in formats.items() if serves(f, task)))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise AnnotuneError(f"cannot tell the {role} format from the extension "
                            f"'{suffix or '(none)'}'", where=str(path),
                            hint=f"choose one with --format ({names})")
    raise AnnotuneError(f"several {role} formats read '{suffix}' files: "
                        f"{', '.join(sorted(f.name for f in candidates))}", where=str(path),
                        hint="choose one with --format")


def choose_importer(path: Path, task: Task, format: str | None = None) -> Any:
    """Return the importer named by ``format``, or the one the file's content and name imply."""
    return choose_importer_noting(path, task, format)[0]


def _short_title(fmt: Any) -> str:
    return str(fmt.title).split(" (")[0]


def _specific(fmt: Any) -> bool:
    return fmt.tasks is not None


def _claims(importers: dict[str, Any], head: sniffing.FileHead | None
            ) -> list[tuple[Any, str]]:
    """Return the importers that recognise the file's first lines, task-specific ones first."""
    if head is None:
        return []
    found = []
    for importer in importers.values():
        sniff = getattr(importer, "sniff", None)
        try:
            reason = sniff(head) if sniff is not None else None
        except Exception:  # a broken sniff of another plugin: its format just claims nothing
            reason = None
        if reason:
            found.append((importer, reason))
    return sorted(found, key=lambda claim: not _specific(claim[0]))  # stable: registry order


def choose_importer_noting(path: Path, task: Task, format: str | None = None
                           ) -> tuple[Any, ImportNote | None]:
    """Choose the importer for a file, and the note that says so when the content decided.

    A named ``format`` is used as it is. Otherwise the extension proposes one; when it does
    not recognise the first lines but another importer, at least as specific, does, the file
    is read by that one (or refused, when it does not serve the project's task). Readers of
    the same kind (CSV and TSV) adapt to each other's content themselves.
    """
    path = Path(path)
    importers = plugins.registry().importers
    if format is not None:
        return _named(importers, task, format, "import"), None
    try:
        proposed = _choose(importers, path, task, None, "import")
        error = None
    except AnnotuneError as cannot_tell:
        proposed, error = None, cannot_tell
    claims = _claims(importers, sniffing.read_head(path))
    if proposed is not None and any(f is proposed or type(f) is type(proposed)
                                    for f, _ in claims):
        return proposed, None
    if proposed is not None:
        claims = [(f, r) for f, r in claims if _specific(f) >= _specific(proposed)]
    serving = [(f, r) for f, r in claims if serves(f, task)]
    if serving:
        chosen, reason = serving[0]
        if proposed is not None:
            other = f"use --format {proposed.name} to import it as {_short_title(proposed)}"
        else:
            other = "use --format to choose another format"
        return chosen, ImportNote(f"reading {path.name} as {_short_title(chosen)} ({reason}); "
                                  f"{other}")
    if claims:
        found, reason = claims[0]
        if proposed is not None:
            other = f"use --format {proposed.name} to import it as {_short_title(proposed)}"
        else:
            other = "choose another format with --format"
        raise AnnotuneError(
            f"this file looks like {_short_title(found)} ({reason}), which "
            f"{task.title} projects cannot import", where=str(path),
            hint=f"import it into a project of a task it serves ({', '.join(found.tasks)}), "
                 f"or {other}")
    if error is not None:
        raise error
    return proposed, None


def choose_exporter(path: Path, task: Task, format: str | None = None) -> Any:
    return _choose(plugins.registry().exporters, Path(path), task, format, "export")


def _task_and_settings(target: Any) -> tuple[Task, TaskSettings]:
    if hasattr(target, "task_name"):  # a Project
        return plugins.registry().task(target.task_name), target.settings
    task, settings = target
    if isinstance(task, str):
        task = plugins.registry().task(task)
    return task, settings


def _forced_split(options: ImportOptions) -> str | None:
    if options.split is None:
        return None
    split = SPLIT_NAMES.get(options.split.strip().lower())
    if split is None:
        raise AnnotuneError(f"unknown split '{options.split}'",
                            hint="use train, validation (or dev) or test")
    return split


class _Validator:
    """Validate annotations with the task; for label tasks, each distinct one only once.

    A label annotation (``annotation_kind == "label"``) is valid or not whatever the texts,
    and a million-row file repeats a handful of them.
    """

    def __init__(self, task: Task, settings: TaskSettings):
        self.task, self.settings = task, settings
        self.cache: dict[Any, Any] | None = {} if task.annotation_kind == "label" else None

    def __call__(self, annotation: Any, fields: dict[str, str]) -> Any:
        cache = self.cache
        if cache is None:
            return self.task.validate(annotation, fields, self.settings)
        try:
            key = tuple(annotation.items())
            found = cache.get(key)
        except (AttributeError, TypeError):  # not a mapping, or unhashable values: no cache
            return self.task.validate(annotation, fields, self.settings)
        if found is None:
            try:
                found = (self.task.validate(annotation, fields, self.settings), None)
            except AnnotuneError as error:
                found = (None, error)
            cache[key] = found
        valid, problem = found
        if problem is not None:
            raise problem
        return dict(valid or {})  # each record owns its annotation


def _not_text(record: ImportRecord) -> RowProblem | None:
    """Return the problem of a record whose texts hold a lone surrogate or a NUL."""
    for name, text in record.fields.items():
        if isinstance(text, str) and (problem := files.text_problem(text)) is not None:
            return RowProblem(record.line, problem[0], field=name, hint=problem[1])
    return None


def _checked(importer: Any, path: Path, task: Task, settings: TaskSettings,
             options: ImportOptions) -> Iterator[ImportRecord | RowProblem | ImportNote]:
    """Read a file, validating annotations again (importers of other plugins included)."""
    split = _forced_split(options)
    # Importers that say so (the tabular ones) validated with this task and settings already,
    # and yield only storable text.
    validate = None if getattr(importer, "validates", False) else _Validator(task, settings)
    items = importer.read(path, task, settings, options)
    if split is None and validate is None:
        yield from items  # nothing to change: no generator step of ours per record
        return
    for item in items:
        if not isinstance(item, ImportRecord):
            yield item
            continue
        if split is not None:
            item.split = split
        if validate is not None and (problem := _not_text(item)) is not None:
            yield problem
            continue
        if item.annotation is not None and validate is not None:
            try:
                item.annotation = validate(item.annotation, item.fields)
            except AnnotuneError as error:
                yield RowProblem(item.line, error.what, field="label", hint=error.hint)
                continue
        yield item


# -- import ----------------------------------------------------------------------------------
def _records(items: Iterator[ImportRecord | RowProblem | ImportNote], report: ImportReport,
             path: Path, skip_bad_rows: bool) -> Iterator[ImportRecord]:
    """Yield a file's records to the store, noting bad rows; raise at the end if it must fail.

    The store reads this while it writes (reading and indexing overlap), inside its one
    transaction: an error raised here, after the whole file was read, rolls everything back.
    After a bad row (without ``skip_bad_rows``) nothing more is passed on, only counted.
    """
    count = 0
    for item in items:
        if isinstance(item, ImportNote):
            report.notes.append(item)
            continue
        report.rows += 1
        if isinstance(item, RowProblem):
            report.problems.append(item)
        elif skip_bad_rows or not report.problems:
            count += 1
            for note in item.notes:
                report.row_notes.setdefault(note, []).append(item.line)
            yield item
    if report.problems and not skip_bad_rows:
        first = report.problems[0]
        others = len(report.problems) - 1
        more = f" ({others} more bad rows)" if others else ""
        hint = f"{first.hint}; {SKIP_HINT}" if first.hint else SKIP_HINT
        raise AnnotuneError(f"{first.message}{more}; nothing was imported",
                            where=where(path, first.line, first.field), hint=hint)
    if not count:
        raise AnnotuneError("the file holds no examples to import", where=str(path),
                            hint="check that it has rows below the header")


def import_file(project: Any, path: Path, format: str | None = None,
                options: ImportOptions = DEFAULT_OPTIONS) -> ImportReport:
    """Read a file and add its examples to the project in one transaction: all or nothing."""
    path = Path(path)
    if not path.is_file():
        raise AnnotuneError("no such file", where=str(path), hint="check the path")
    task, settings = _task_and_settings(project)
    importer, note = choose_importer_noting(path, task, format)
    report = ImportReport(path=path, format=importer.name, notes=[note] if note else [])
    records = _records(_checked(importer, path, task, settings, options), report, path,
                       options.skip_bad_rows)
    summary = project.add_examples(
        records, source=str(path),
        keep_repeated_texts=getattr(importer, "keeps_repeated_texts", False))
    report.added, report.annotated = summary.added, summary.annotated
    report.duplicates, report.duplicate_lines = summary.duplicates, summary.duplicate_lines
    conflicts = sorted(getattr(summary, "conflicting_lines", ()))
    if conflicts:
        shown = ", ".join(str(n) for n in conflicts[:10]) + (", ..." if len(conflicts) > 10
                                                              else "")
        several = len(conflicts) > 1
        report.notes.append(ImportNote(
            f"{len(conflicts):,} duplicate{'s' if several else ''} (line{'s' if several else ''} "
            f"{shown}) carr{'y' if several else 'ies'} an annotation other than the one the "
            "project (or an earlier line) keeps for the same text: the file's was not applied; "
            "relabel those examples in the labeling view if the file is right", warning=True))
    return report


SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


# -- preview ---------------------------------------------------------------------------------
def _raw_rows(importer: Any, path: Path, options: ImportOptions, limit: int
              ) -> tuple[list[str], list[dict[str, Any]], list[int]] | None:
    """Return the file's columns, first rows and their line numbers (importers of tables)."""
    if hasattr(importer, "table"):
        table = importer.table(path, options)
        raw: list[dict[str, Any]] = []
        lines: list[int] = []
        for line, cells in table.rows:
            if len(raw) >= limit:
                break
            if isinstance(cells, str):  # a bad row: read() reports it
                continue
            raw.append(dict(zip(table.header, cells, strict=False)))
            lines.append(line)
        return table.header, raw, lines
    if hasattr(importer, "objects"):
        keys, items = importer.objects(path)
        return keys, [value if isinstance(value, dict) else
                      {"error": getattr(value, "message", value)} for _, value in items[:limit]
                      ], [line for line, _ in items[:limit]]
    return None


def preview_file(project_or_task_and_settings: Any, path: Path, format: str | None = None,
                 options: ImportOptions = DEFAULT_OPTIONS, limit: int = 20) -> Preview:
    """Read a file without writing anything: its columns, first rows, problems and total.

    Accepts a Project or a ``(task or task name, TaskSettings)`` pair. Problems that stop the
    whole file (wrong encoding, a missing column) come back in ``error`` instead of raising,
    so the dialog can show them next to the mapping controls.
    """
    path = Path(path)
    task, settings = _task_and_settings(project_or_task_and_settings)
    preview = Preview(columns=[], rows=[], problems=[], total=0)
    try:
        importer, note = choose_importer_noting(path, task, format)
        preview.format = importer.name
        preview.notes = [note] if note else []
        raw = _raw_rows(importer, path, options, limit)
        if raw is not None:
            preview.columns, preview.rows, preview.lines = raw
            preview.mapping = resolve_columns(preview.columns, task, options, path)
        for item in _checked(importer, path, task, settings, options):
            if isinstance(item, ImportNote):
                preview.notes.append(item)
                continue
            preview.total += 1
            if isinstance(item, RowProblem):
                preview.problems.append(item)
            elif len(preview.records) < limit:
                preview.records.append(item)
    except AnnotuneError as error:
        preview.error = str(error)
    if not preview.columns and preview.records:  # a format without columns (CoNLL, SQuAD)
        preview.columns = list(task.fields)
        preview.rows = [dict(record.fields) for record in preview.records]
        preview.lines = [record.line for record in preview.records]
    return preview


# -- export ----------------------------------------------------------------------------------
def export_data(project: Any, path: Path, format: str | None = None,
                include_skipped: bool = False, replace: bool = True) -> int:
    """Write the project's annotated examples to a file; return how many were written.

    The project's own files and any SQLite database are never replaced, whatever
    ``replace`` says; another existing file only with ``replace`` (the CLI's --force; a
    desktop file dialog has asked already).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise AnnotuneError(f"the folder {path.parent} does not exist", where=str(path),
                            hint="create it first")
    _check_output(path, getattr(project, "path", None), replace)
    task = plugins.registry().task(project.task_name)
    exporter = choose_exporter(path, task, format)
    rows = (ExportRow(example_id=example.id, fields=dict(example.fields),
                      annotation=stored.payload, split=example.split, status=stored.status,
                      meta=dict(example.meta), source_id=example.source_id)
            for example, stored in project.annotated(include_skipped=include_skipped))
    return exporter.write(path, task, rows)


def _check_output(path: Path, project_path: Path | None, replace: bool) -> None:
    """Refuse an export onto the project itself, onto a database, or (unasked) onto a file."""
    if project_path is not None:
        project_path = Path(project_path)
        for own in (project_path, *(Path(f"{project_path}{s}") for s in SQLITE_COMPANIONS)):
            same = (path.resolve() == own.resolve() or
                    (path.exists() and own.exists() and os.path.samefile(path, own)))
            if same:
                raise AnnotuneError(
                    f"the output is the project's own file ({own.name}): writing the export "
                    "there would destroy the project", where=str(path),
                    hint="write the export to another file, e.g. annotations.jsonl")
    if not path.exists():
        return
    try:
        with path.open("rb") as existing:
            database = existing.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        database = False
    if database:
        raise AnnotuneError("the output is an SQLite database (an annotune project?), which "
                            "an export never replaces", where=str(path),
                            hint="write the export to another file")
    if not replace:
        raise AnnotuneError("a file already exists here", where=str(path),
                            hint="choose another name, or pass --force to replace it")
