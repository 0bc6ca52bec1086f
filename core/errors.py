"""The project's own error class: every failure a user can fix is raised as AnnotuneError."""

from __future__ import annotations

# The desktop app's exit status when this system cannot show a window (missing system
# libraries): `annotune demo` tells it from a crash, because its own work is done by then.
EXIT_NO_WINDOW = 3


class AnnotuneError(Exception):
    """Report what went wrong, where it happened and what to do about it.

    The CLI prints ``str(error)`` on one line and exits non-zero; the desktop shows it in a
    dialog. Nothing else is needed to understand the problem, so no traceback is shown.
    """

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None):
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.what
        if self.where:
            text = f"{self.where}: {text}"
        if self.hint:
            text = f"{text} — {self.hint}"
        return text


def where(path: object, line: int | None = None, field: str | None = None) -> str:
    """Format a location as ``file:line (field 'x')`` for error messages."""
    text = str(path)
    if line is not None:
        text += f":{line}"
    if field:
        text += f" (field '{field}')"
    return text
