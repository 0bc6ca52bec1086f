"""Reading and writing the files formats work on: strict UTF-8 in, atomic writes out."""

from __future__ import annotations

import codecs
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError


def read_utf8(path: Path, what: str, hint: str | None = None) -> str:
    """Read a whole file as UTF-8 (a BOM is allowed); raise AnnotuneError for anything else.

    ``what`` names what the file should be ("a CSV file"); ``hint`` says what to do with a
    binary file instead.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise AnnotuneError(f"cannot read the file: {error.strerror}", where=str(path)) from None
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise AnnotuneError("the file is UTF-16 text, not UTF-8 (byte offset 0 is a UTF-16 "
                            "byte order mark)", where=str(path),
                            hint="re-save it as UTF-8 and import again")
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = start + error.start
        line = data.count(b"\n", 0, offset) + 1
        raise AnnotuneError(
            f"the file is not UTF-8: byte 0x{data[offset]:02X} at byte offset {offset} "
            f"(line {line}) is not valid UTF-8", where=str(path),
            hint="re-save it as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet, or "
                 "`iconv -f latin1 -t utf-8`) and import again") from None
    if "\x00" in text:
        raise AnnotuneError(f"the file holds NUL bytes: it is a binary file, not {what}",
                            where=str(path), hint=hint)
    return text


def write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temporary file in the same folder, renamed into place at the end.

    ``write`` receives a text stream (UTF-8, newlines written as given); a failure leaves the
    old file, or none, never half a file.
    """
    path = Path(path)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=path.parent,
                                         prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
