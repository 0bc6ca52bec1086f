"""Turn what SQLite reports into errors a user can act on; never let a raw sqlite3 error out.

Three kinds of trouble come from the file rather than from the caller: another program holds
the write lock for too long (``ProjectBusyError``), the file is damaged
(``DamagedProjectError``), or a value in it is not the JSON annotune wrote
(``StoredValueError``). ``guard`` wraps every public method of ``Project`` so that each of
them names the project file and says what to do.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from annotune.core.errors import AnnotuneError

BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
DAMAGE_WORDS = ("malformed", "not a database", "disk i/o error", "database corrupt",
                "file is not a database")
RECOVER_HINT = ("restore the newest copy (annotune backup PROJECT COPY makes one), or rescue "
                "what is readable with `sqlite3 PROJECT .recover | sqlite3 RESCUED` and open "
                "RESCUED")


class ProjectBusyError(AnnotuneError):
    """Another program held the project's write lock longer than this change could wait."""

    def __init__(self, waited_s: float | None = None, where: str | None = None):
        within = f"within {waited_s:g} s" if waited_s else "in time"
        super().__init__(
            f"another program is writing to this project and did not let go {within} (an "
            "import, a training run, pre-annotation or another annotune window)", where=where,
            hint="nothing was written; wait until it finishes, then try again")
        self.waited_s = waited_s


class DamagedProjectError(AnnotuneError):
    """The project file has damaged pages: refuse to read or write it."""

    def __init__(self, what: str, where: str | None = None):
        super().__init__(f"the project file is damaged: {what}", where=where,
                         hint=f"nothing was written to it; {RECOVER_HINT}")


class StoredValueError(AnnotuneError):
    """A value in the project file is not the JSON annotune wrote there."""

    def __init__(self, place: str, text: str | None, error: ValueError | TypeError):
        excerpt = (text or "")[:40]
        super().__init__(f"{place} is not valid JSON ({error}): {excerpt!r}",
                         hint="the file was changed outside annotune or is damaged; restore a "
                              "copy (annotune backup makes one), or correct that value with the "
                              "sqlite3 tool")


def is_busy(error: BaseException) -> bool:
    """Tell whether an sqlite3 error means another connection holds a lock."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in BUSY_CODES
    text = str(error).lower()
    return "locked" in text or "busy" in text


def is_damage(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, sqlite3.DatabaseError) and any(w in text for w in DAMAGE_WORDS)


def _user_error(error: sqlite3.Error, where: str) -> AnnotuneError | None:
    """Return the user-facing error for an sqlite3 error, or None for a programming error."""
    if isinstance(error, sqlite3.OperationalError) and is_busy(error):
        return ProjectBusyError(where=where)
    if is_damage(error):
        return DamagedProjectError(str(error), where=where)
    if "database or disk is full" in str(error).lower():
        return AnnotuneError("the disk is full", where=where,
                             hint="free some space and try again; nothing was written")
    if "readonly" in str(error).lower() or "read-only" in str(error).lower():
        return AnnotuneError("the project file cannot be written (read-only)", where=where,
                             hint="check the file's permissions, or work on a copy")
    return None


@contextlib.contextmanager
def translated(where: str) -> Iterator[None]:
    """Re-raise sqlite3 errors a user can do something about as AnnotuneErrors naming ``where``."""
    try:
        yield
    except (StoredValueError, ProjectBusyError, DamagedProjectError) as error:
        if error.where is None:  # raised below the Project, which knows the file
            error.where = where
            error.args = (str(error),)
        raise
    except sqlite3.Error as error:
        user = _user_error(error, where)
        if user is None:
            raise
        raise user from None


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            with translated(str(self.path)):
                yield from method(self, *args, **kwargs)
        return generator

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with translated(str(self.path)):
            return method(self, *args, **kwargs)
    return call


def guard(cls: type) -> type:
    """Wrap every public method of a store class (with a ``path``) in ``translated``."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        setattr(cls, name, _guarded(value))
    return cls
