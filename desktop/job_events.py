"""Turn the training child process's JSON-line events into Qt signals, off the GUI thread."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from annotune.core.errors import AnnotuneError
from annotune.core.store.runs import TrainingBusyError

log = logging.getLogger("annotune.desktop")


class TrainingWatcher(QObject):
    """Read a TrainingProcess's events on a worker thread and re-emit them as signals.

    The reading loop blocks on the child's stdout, so it lives on its own QThread; the GUI
    thread only receives queued signals and never waits.
    """

    started = Signal(dict)
    progress = Signal(dict)
    metrics = Signal(dict)
    notice = Signal(dict)  # "precision" (measured at the start) and "memory" (smaller batch)
    finished = Signal(dict)
    failed = Signal(dict)
    cancelled = Signal(dict)
    ended = Signal(dict)  # the last event, whatever it was

    def __init__(self, project_path: Path, config: Any, python: str | None = None,
                 env: dict[str, str] | None = None):
        super().__init__()
        self.project_path = Path(project_path)
        self.config = config
        self.python = python  # the training environment's interpreter (None: this one)
        self.env = env
        self.process: Any = None
        self.stopper: threading.Thread | None = None
        self.thread = QThread()
        self.thread.setObjectName("training-events")
        self.moveToThread(self.thread)
        self.thread.started.connect(self._run)

    def start(self) -> None:
        self.thread.start()

    @Slot()
    def _run(self) -> None:
        from annotune.core.training.job import TrainingProcess

        final: dict[str, Any] = {"event": "failed",
                                 "error": "the training process ended without a result"}
        try:
            process = TrainingProcess(python=self.python)
            self.process = process
            process.start(self.project_path, self.config, env=self.env)
            for event in process.events():
                kind = event.get("event")
                if kind in ("precision", "memory"):
                    kind = "notice"
                signal = getattr(self, str(kind), None) if kind in (
                    "started", "progress", "metrics", "notice", "finished", "failed",
                    "cancelled") else None
                if signal is not None:
                    signal.emit(event)
                if kind in ("finished", "failed", "cancelled"):
                    final = event
        except AnnotuneError as error:  # e.g. another training of the project is running
            final = {"event": "failed", "error": str(error),
                     "busy": isinstance(error, TrainingBusyError)}
            self.failed.emit(final)
        except Exception as error:  # reported to the panel, which shows it
            log.exception("training process failed")
            final = {"event": "failed", "error": str(error)}
            self.failed.emit(final)
        self.ended.emit(final)
        self.thread.quit()

    def stop(self) -> None:
        """Ask the child process to stop (it records the run as cancelled).

        TrainingProcess.stop waits for the child to finish its step (and kills it after a
        timeout), so it runs on a plain thread: the GUI thread never waits for it.
        """
        process = self.process
        if process is not None and self.stopper is None:
            self.stopper = threading.Thread(target=process.stop, name="training-stop",
                                            daemon=True)
            self.stopper.start()

    def wait(self, ms: int = 10000) -> bool:
        return self.thread.wait(ms)
