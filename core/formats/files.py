"""Reading and writing the files formats work on: checked text in, atomic writes out.

Text comes in as UTF-8, or as UTF-8/UTF-16/UTF-32 with a byte order mark (spreadsheets and
Windows editors write those); anything else is refused with the file, the line, the line as
it would read, and the command that converts it. Nothing is ever guessed silently: a Latin-1
file decoded as something else would store wrong characters in every example.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError

# Longest first: the UTF-32 little-endian mark starts with the UTF-16 one.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"))
SHOWN = 60  # characters of a bad line quoted in an error


def read_utf8(path: Path, what: str, hint: str | None = None) -> str:
    """Read a whole text file (UTF-8, or any UTF with a BOM); raise AnnotuneError for the rest.

    ``what`` names what the file should be ("a CSV file"); ``hint`` says what to do with a
    binary file instead.
    """
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise AnnotuneError("this is a folder, not a file", where=str(path),
                            hint="pass the path of a file") from None
    except FileNotFoundError:
        raise AnnotuneError("no such file", where=str(path), hint="check the path") from None
    except OSError as error:
        raise AnnotuneError(f"cannot read the file: {error.strerror}", where=str(path)) from None
    return decode_text(data, str(path), what, hint)


def decode_text(data: bytes, source: str, what: str, hint: str | None = None) -> str:
    """Decode a file's bytes as read_utf8 does; ``source`` names it in errors (a path, <stdin>)."""
    encoding, start = "utf-8", 0
    for bom, name in BOMS:
        if data.startswith(bom):
            encoding, start = name, len(bom)
            break
    # NUL bytes first: a binary file is not "text with a bad byte", nor is UTF-16 without a mark
    if encoding == "utf-8" and b"\x00" in data:
        raise _nul_error(data, source, what, hint)
    try:
        text = data[start:].decode(encoding)
    except UnicodeDecodeError as error:
        raise _decode_error(data, start, encoding, error, source) from None
    if "\x00" in text:  # a NUL character in UTF-16/32 text
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise AnnotuneError(f"the file holds NUL characters (first on line {line}): it is not "
                            f"{what}", where=f"{source}:{line}", hint=hint)
    return text


def _decode_error(data: bytes, start: int, encoding: str, error: UnicodeDecodeError,
                  source: str) -> AnnotuneError:
    offset = start + error.start
    before = data[start:offset].decode(encoding, errors="replace")
    line = before.count("\n") + 1
    if encoding != "utf-8":  # a damaged UTF-16/32 file: say where, nothing to guess
        return AnnotuneError(f"the file is {encoding.upper()} (it starts with a byte order "
                             f"mark) but bytes at byte offset {offset} (line {line}) are not "
                             f"valid {encoding.upper()}", where=f"{source}:{line}",
                             hint="re-save it from the program that wrote it, as UTF-8")
    line_start = data.rfind(b"\n", 0, offset) + 1
    line_end = data.find(b"\n", offset)
    raw = data[line_start:line_end if line_end >= 0 else len(data)].rstrip(b"\r")
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    shown = _quote(raw.decode("utf-8", errors="replace"))
    as_latin = _quote(raw.decode("cp1252", errors="replace"))
    return AnnotuneError(
        f"the file is not UTF-8: byte 0x{data[offset]:02X} at byte offset {offset} "
        f"(line {line}, column {column}) is not valid UTF-8; the line reads {shown}, which "
        f"as Latin-1/Windows-1252 would be {as_latin}", where=f"{source}:{line}",
        hint=f"{_convert_hint(source, 'latin1')} when it is Latin-1; from a spreadsheet, "
             "re-save it as UTF-8 ('CSV UTF-8')")


def _nul_error(data: bytes, source: str, what: str, hint: str | None) -> AnnotuneError:
    if _looks_like_utf16(data):
        encoding = "utf-16le" if data[1:2] == b"\x00" else "utf-16be"
        return AnnotuneError(
            f"the file looks like {encoding.upper()} text without a byte order mark (every "
            "other byte is 0), not UTF-8", where=f"{source}:1",
            hint=_convert_hint(source, encoding))
    line = data.count(b"\n", 0, data.index(b"\x00")) + 1
    return AnnotuneError(f"the file holds NUL bytes (first on line {line}): it is a binary "
                         f"file, not {what}", where=f"{source}:{line}", hint=hint)


def _looks_like_utf16(data: bytes) -> bool:
    """Say whether mostly-ASCII text was written as UTF-16 (a 0 byte beside each character)."""
    sample = data[:2048]
    if len(sample) < 4:
        return False
    even, odd = sample[0::2], sample[1::2]
    # ASCII characters in UTF-16 leave one byte of each pair 0: LE the odd ones, BE the even
    return max(odd.count(0) / len(odd), even.count(0) / len(even)) > 0.6


def _convert_hint(source: str, encoding: str) -> str:
    """Say how to convert the file to UTF-8 with iconv, naming the file when there is one."""
    path = Path("FILE.txt" if source.startswith("<") else source)
    converted = path.with_name(f"{path.stem}-utf8{path.suffix}")
    return (f"convert it to UTF-8 and use the converted file, e.g. "
            f"`iconv -f {encoding} -t utf-8 {path.name} > {converted.name}`")


def _quote(text: str) -> str:
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")


def split_lines(text: str) -> list[str]:
    """Split at CRLF, LF or a lone CR (old Mac files), never at U+2028 inside JSON strings.

    str.splitlines would also cut at U+2028, U+0085 and form feeds, which are text.
    """
    if "\r" not in text:
        return text.split("\n")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def lone_surrogate(text: str) -> int | None:
    """Return the index of the first lone surrogate in ``text`` (half of a UTF-16 pair), if any.

    Python strings can hold them (JSON escapes such as "\\ud83c" alone, bytes decoded with
    surrogateescape), but they are not characters: neither SQLite nor the tokenizer takes them.
    """
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def surrogate_message(text: str, index: int) -> str:
    """Describe a lone surrogate at ``index``: which one, where, and the text around it."""
    around = text[max(0, index - 20):index + 20].encode("utf-8", "backslashreplace")
    return (f"the text holds a lone surrogate U+{ord(text[index]):04X} at character "
            f"{index + 1} (half of a UTF-16 pair, not a character): "
            f"...{around.decode('utf-8')}...")


NUL_HINT = ("remove it: U+0000 is no character of any text, and a CSV or TSV file that holds "
            "one cannot be read back")


def text_problem(text: str) -> tuple[str, str] | None:
    """Return (what, what to do) when a string cannot be stored and exported as text, else None.

    Half a surrogate pair is not a character (neither SQLite nor the tokenizer takes it); a
    NUL (a JSON escape "\\u0000") is stored, but every CSV/TSV reader takes the export that
    holds it for a binary file. Files themselves are refused when they hold either.
    """
    index = lone_surrogate(text)
    if index is not None:
        return surrogate_message(text, index), SURROGATE_HINT
    index = text.find("\x00")
    if index >= 0:
        around = text[max(0, index - 20):index + 20].replace("\x00", "\\u0000")
        return (f"the text holds a NUL character (U+0000) at character {index + 1}: "
                f"...{around}...", NUL_HINT)
    return None


SURROGATE_HINT = ("write the character itself, or both halves of its JSON escape (🍕 is "
                  "\\ud83c\\udf55); text read with errors='surrogateescape' came from a file "
                  "that is not UTF-8")


def write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temporary file in the same folder, renamed into place at the end.

    ``write`` receives a text stream (UTF-8, newlines written as given); a failure (a full
    disk, a read-only folder) raises an AnnotuneError and leaves the old file, or none, never
    half a file nor the temporary one. The file gets the permissions any new file gets (the
    umask's), or those of the file it replaces: an export is for sharing, not private.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open applies the umask to 0o666, as creating any file does (a NamedTemporaryFile
        # is created 0o600 and stays so after the rename)
        descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except OSError as error:
        raise AnnotuneError(f"cannot write here: {error.strerror}", where=str(path),
                            hint="choose a folder you can write to") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):  # keep what the replaced file allowed
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            full = error.errno in (errno.ENOSPC, errno.EDQUOT)
            raise AnnotuneError(
                f"cannot write the file: {error.strerror}", where=str(path),
                hint=("free some space and try again" if full else "check the folder") +
                     ("; the file there before is unchanged" if path.exists() else
                      "; nothing was written")) from None
        raise
