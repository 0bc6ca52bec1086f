"""What importers and exporters exchange with the store, and their small protocol.

An importer never writes: it yields records (or the problems it found, with their line, and
notes on what it decided or left unused), and core.formats.importing decides whether a problem
aborts the whole import or is skipped and reported, and shows the notes. The store then writes
everything in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from annotune.core.tasks import Annotation, Task, TaskSettings


@dataclass
class ImportRecord:
    """One example read from a file, with its annotation when the file carries one."""

    fields: dict[str, str]
    annotation: Annotation | None = None
    split: str | None = None
    line: int = 0  # 1-based line (or record number for formats without lines)
    source_id: str | None = None  # the file's own id for the example, when it has one
    meta: dict[str, Any] = field(default_factory=dict)  # format details kept for round trips
    # what the importer changed on the way in (e.g. offsets converted): the import report
    # says each note once, with the lines it applies to
    notes: list[str] = field(default_factory=list)


@dataclass
class RowProblem:
    """A row the importer could not read; ``line`` and ``field`` say where."""

    line: int
    message: str
    field: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class ImportNote:
    """Something a user must hear about a file that is not a bad row.

    A choice made from the content (the format, the delimiter), or data that no record
    carries (a column that feeds nothing, no label column): silence would let a file look
    imported when half of it was not. ``warning`` marks notes that mean lost work.
    """

    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{'warning' if self.warning else 'note'}: {self.message}"


@dataclass(frozen=True)
class ImportOptions:
    """How to read a file: which column feeds which field, and what to do with bad rows.

    ``mapping`` maps a task field ("text", "text_pair", "context", "question") or one of
    "label", "split", "id" to a column (CSV/TSV header) or key (JSONL). Unmapped task fields
    default to a column of the same name.
    """

    mapping: Mapping[str, str] = field(default_factory=dict)
    skip_bad_rows: bool = False
    split: str | None = None  # force every imported example into this split


@dataclass
class ExportRow:
    """One annotated example handed to an exporter."""

    example_id: int
    fields: dict[str, str]
    annotation: Annotation
    split: str | None
    status: str
    meta: dict[str, Any] = field(default_factory=dict)  # the ImportRecord.meta it came from
    source_id: str | None = None  # the id its file gave it: exports write it as the row's id

    @property
    def id(self) -> str | int:
        """Return the id an export writes: the file's own when it had one, else the example's.

        People join exported labels back to their data by the id they imported; writing the
        project's row numbers instead would attach labels to the wrong rows.
        """
        return self.example_id if self.source_id is None else self.source_id


class Importer(Protocol):
    name: str  # "csv", "jsonl", "conll", ...
    title: str
    extensions: tuple[str, ...]  # ".csv", ...; used to guess the format from a file name
    tasks: tuple[str, ...] | None  # task names it serves; None means every task
    # Optional ``keeps_repeated_texts = True``: the records are positions in a document (CoNLL
    # sentences), so a repeated text is kept as its own example; its identity is file + line.
    # Optional ``maps_columns = True``: its records come from named columns or keys that the
    # person may assign to the task's fields (``--map``; the import dialog's Columns).
    # Optional ``sniff(head: sniffing.FileHead) -> str | None``: a short reason when the file's
    # first lines are unmistakably this format ("its lines are JSON objects"), else None; a
    # file whose extension names another format is then read as this one, with a note.

    def read(self, path: Path, task: Task, settings: TaskSettings, options: ImportOptions
             ) -> Iterator[ImportRecord | RowProblem | ImportNote]: ...


class Exporter(Protocol):
    name: str
    title: str
    extensions: tuple[str, ...]
    tasks: tuple[str, ...] | None

    def write(self, path: Path, task: Task, rows: Iterable[ExportRow]) -> int:
        """Write rows to path (atomically: a temporary file renamed at the end); return count."""
        ...


def uniform_ids(ids: list[str | int]) -> list[str | int]:
    """Give exported ids one type (readers such as datasets take one per column).

    Numbers when every id is one (ids read from a file are text: "17"), else text.
    """
    numbers = all(isinstance(i, int) or _canonical_int(i) for i in ids)
    return [int(i) if numbers else str(i) for i in ids]


def _canonical_int(value: Any) -> bool:
    """True for text that an integer prints as ("17", not "017", "+17" or "1_7")."""
    return isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit() \
        and str(int(value)) == value


def serves(fmt: Any, task: Task) -> bool:
    """True when a format can be used with this task."""
    return fmt.tasks is None or task.name in fmt.tasks
