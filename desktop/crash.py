"""The desktop's log file and its last line of defence: uncaught errors become a dialog."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from annotune.core.display_names import for_people
from annotune.core.errors import AnnotuneError

log = logging.getLogger("annotune.desktop")


def data_dir() -> Path:
    """Return the user's annotune data folder (ANNOTUNE_DATA_DIR overrides it)."""
    override = os.environ.get("ANNOTUNE_DATA_DIR")
    if override:
        folder = Path(override)
    else:
        location = QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.AppLocalDataLocation)
        folder = Path(location) if location else Path.home() / ".annotune"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def setup_logging() -> Path:
    """Log to ``<data dir>/logs/desktop.log`` and return its path."""
    folder = data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "desktop.log"
    root = logging.getLogger("annotune")
    if not any(getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def show_error(parent: QWidget | None, error: BaseException, title: str = "annotune") -> None:
    """Show a user-fixable error as a plain message: what, where, what to do."""
    log.warning("%s", error)
    # core's hints name command-line options; the window names its own controls
    box = QMessageBox(QMessageBox.Icon.Warning, title, for_people(str(error)), parent=parent)
    box.setObjectName("error_dialog")
    box.open()


class CrashHandler:
    """A sys.excepthook: AnnotuneError → a message; anything else → a crash dialog + log path."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.previous = sys.excepthook
        self.last_dialog: QMessageBox | None = None

    def install(self) -> None:
        sys.excepthook = self

    def uninstall(self) -> None:
        if sys.excepthook is self:
            sys.excepthook = self.previous

    def __call__(self, kind: type[BaseException], error: BaseException,
                 tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        parent = QApplication.activeWindow()
        if isinstance(error, AnnotuneError):
            show_error(parent, error)
            return
        text = "".join(traceback.format_exception(kind, error, tb))
        log.error("uncaught error\n%s", text)
        box = QMessageBox(QMessageBox.Icon.Critical, "annotune: unexpected error",
                          f"Something went wrong: {kind.__name__}: {error}\n\n"
                          f"Your work is saved (every decision is stored as it is made).\n"
                          f"Details are in the log file:\n{self.log_path}", parent=parent)
        box.setObjectName("crash_dialog")
        box.setDetailedText(text)
        box.open()
        self.last_dialog = box
