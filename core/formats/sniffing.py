"""Tell a file's format from its first lines, so an extension that lies cannot misread it.

CoNLL-2003 ships as ``train.txt``; spreadsheets in many locales write ``;`` between columns
whatever the file is called. Reading such a file by its extension stores every line as a text
and drops the labels without an error. Importers may declare ``sniff(head) -> str | None``:
a short reason ("its lines are token columns with BIO tags") when the first lines are
unmistakably their format, None otherwise; core.formats.importing follows the content and says
so. The tests here are strict on purpose: a sniff that claims ordinary prose would be a new way
to misread files.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from annotune.core.formats.files import BOMS, split_lines

HEAD_BYTES = 64 * 1024
MAX_LINES = 400
TABLE_ROWS = 50  # rows below the header that must agree with it
AGREEMENT = 0.8  # share of those rows with the header's width (quoted line breaks may differ)
DELIMITERS = (",", "\t", ";", "|")
DELIMITER_NAMES = {",": "commas", "\t": "tabs", ";": "semicolons", "|": "vertical bars"}
# O, or B-/I-/E-/S-/L-/U- and an entity type: BIO (IOB2), IOB1, BIOES and BILOU tags.
TAG = re.compile(r"(?:O|[BIESLU]-\S+)\Z")
DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class FileHead:
    """The first lines of a file, decoded leniently (the importer reports bad bytes itself)."""

    name: str
    lines: tuple[str, ...]  # complete lines without their line ends


def read_head(path: Path) -> FileHead | None:
    """Read up to 64 KiB from the start of a file; None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(HEAD_BYTES + 1)
    except OSError:
        return None
    complete = len(data) <= HEAD_BYTES
    data = data[:HEAD_BYTES]
    encoding, start = "utf-8", 0
    for bom, name in BOMS:
        if data.startswith(bom):
            encoding, start = name, len(bom)
            break
    text = data[start:].decode(encoding, errors="replace")
    lines = split_lines(text)
    if not complete:
        lines.pop()  # cut in the middle
    return FileHead(Path(path).name, tuple(lines[:MAX_LINES]))


def _non_blank(lines: Sequence[str]) -> list[str]:
    return [line for line in lines if line.strip()]


# -- delimited tables ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    """What the first lines say about a delimited table: its delimiter and header."""

    delimiter: str
    header: tuple[str, ...]
    rows: int  # sample rows checked below the header


def _cells(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def table_shape(lines: Sequence[str], delimiter: str) -> Table | None:
    """Return the table the lines make with this delimiter, or None when they make none.

    A table has a header of at least two distinct, non-empty names, and most rows below it
    (80 %: a quoted field may hold a line break) have as many cells.
    """
    lines = _non_blank(lines)
    if not lines:
        return None
    header = [cell.strip() for cell in _cells(lines[0], delimiter)]
    if len(header) < 2 or not all(header) or len(set(header)) != len(header):
        return None
    rows = lines[1:TABLE_ROWS + 1]
    agreeing = sum(len(_cells(row, delimiter)) == len(header) for row in rows)
    if rows and agreeing < AGREEMENT * len(rows):
        return None
    return Table(delimiter, tuple(header), len(rows))


def declared_delimiter(first_line: str) -> str | None:
    """Return the delimiter a first line such as ``sep=;`` declares (Excel writes one), or None.

    Excel saves CSV files with the list separator of the user's region (a semicolon in much of
    Europe) and may say so in such a line above the header.
    """
    line = first_line.lstrip("\ufeff").rstrip("\r\n")
    if len(line) == 5 and line.lower().startswith("sep=") and line[4] in DELIMITERS:
        return line[4]
    return None


def sniff_table(lines: Sequence[str], preferred: str) -> Table | None:
    """Find the delimiter of a table: the preferred one when it fits, else the only one that does.

    Candidates are comma, tab, semicolon and vertical bar. When several other delimiters fit
    (a header "a;b,c"), the content does not decide and None is returned. A first line that
    declares the delimiter (``sep=;``) decides; the header is the line after it.
    """
    declared = declared_delimiter(lines[0]) if lines else None
    if declared is not None:
        return table_shape(lines[1:], declared)
    own = table_shape(lines, preferred)
    if own is not None:
        return own
    fitting = [shape for d in DELIMITERS if d != preferred
               if (shape := table_shape(lines, d)) is not None]
    return fitting[0] if len(fitting) == 1 else None


def names_known_column(table: Table, names: Collection[str]) -> bool:
    """Say whether a table's header names a column annotune knows (text, label, sentence1...)."""
    known = {name.lower() for name in names}
    return any(cell.lower() in known for cell in table.header)


def delimiter_name(delimiter: str) -> str:
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))


# -- token columns (CoNLL) -----------------------------------------------------------------------
def token_columns(head: FileHead) -> str | None:
    """Claim files whose lines are ``token ... tag`` columns (CoNLL), whatever their name.

    Every token line in the sample has the same number of whitespace-separated columns (two
    or more) and ends in a tag (O, B-X, I-X, E-X, S-X...); and the file shows CoNLL's
    structure: a -DOCSTART- line, a blank line between sentences, or an entity tag.
    """
    widths: set[int] = set()
    tokens = docstarts = breaks = entities = 0
    blank_before = False
    for line in head.lines:
        columns = line.split()
        if not columns:
            blank_before = tokens > 0
            continue
        if columns[0] == DOCSTART:
            docstarts += 1
            continue
        if not TAG.match(columns[-1]):
            return None
        widths.add(len(columns))
        if len(widths) > 1 or len(columns) < 2:
            return None
        tokens += 1
        breaks += blank_before
        blank_before = False
        entities += columns[-1] != "O"
    if tokens < 3 or not (docstarts or breaks or entities):
        return None
    return "its lines are token columns with BIO tags"


# -- JSON Lines ----------------------------------------------------------------------------------
def json_objects(head: FileHead, sample: int = 20) -> str | None:
    """Claim files whose first non-blank lines are each one JSON object."""
    lines = _non_blank(head.lines)[:sample]
    if not lines:
        return None
    for line in lines:
        if not line.lstrip().startswith("{"):
            return None
        try:
            value = json.loads(line)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
    return "its lines are JSON objects"
