"""Turn the training child process's JSON-line events into Qt signals, off the GUI thread."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from annotune.core.errors import AnnotuneError
from annotune.core.events import Event, Failed, is_end
from annotune.core.store.runs import TrainingBusyError

log = logging.getLogger("annotune.desktop")


class ChildWatcher(QObject):
    """Read a child job's JSON-line events on a worker thread and re-emit them as signals.

    The reading loop blocks on the child's stdout, so it lives on its own QThread; the GUI
    thread only receives queued signals and never waits. Subclasses start their own kind of
    child (training, label check, learning curve) in ``launch``.
    """

    event = Signal(dict)  # every event, the last one included
    ended = Signal(dict)  # the event that ended the job: finished, failed or cancelled
    what = "job"  # for messages and thread names

    def __init__(self, python: str | None = None, env: dict[str, str] | None = None):
        super().__init__()
        self.python = python  # the training environment's interpreter (None: this one)
        self.env = env
        self.process: Any = None
        self.stopper: threading.Thread | None = None
        self.thread = QThread()
        self.thread.setObjectName(f"{self.what.replace(' ', '-')}-events")
        self.moveToThread(self.thread)
        self.thread.started.connect(self._run)

    def launch(self) -> None:
        """Create the child's process object in ``self.process``, then start it."""
        raise NotImplementedError

    def relay(self, event: Event) -> None:
        """Re-emit one event of the child on the GUI thread's side."""
        self.event.emit(event)

    def failure(self, error: Exception) -> Failed:
        """Return the failed event for a child that could not start or be read."""
        if not isinstance(error, AnnotuneError):  # a person can act on an AnnotuneError
            log.exception("%s process failed", self.what)
        return Failed(event="failed", error=str(error))

    def start(self) -> None:
        self.thread.start()

    @Slot()
    def _run(self) -> None:
        final: Event = Failed(event="failed", error=f"the {self.what} ended without a result")
        try:
            self.launch()
            for event in self.process.events():
                self.relay(event)
                if is_end(event):
                    final = event
        except Exception as error:  # shown by the view that started the job
            final = self.failure(error)
        self.ended.emit(final)
        self.thread.quit()

    def stop(self) -> None:
        """Ask the child to stop, on a plain thread: stopping waits for the child's step (and
        kills it after a timeout), and the GUI thread never waits."""
        process = self.process
        if process is not None and self.stopper is None:
            self.stopper = threading.Thread(target=process.stop, daemon=True,
                                            name=f"{self.what.replace(' ', '-')}-stop")
            self.stopper.start()

    def wait(self, ms: int = 10000) -> bool:
        return self.thread.wait(ms)


class TrainingWatcher(ChildWatcher):
    """Follow a TrainingProcess: each kind of event has its own signal."""

    started = Signal(dict)
    progress = Signal(dict)
    metrics = Signal(dict)
    notice = Signal(dict)  # "precision" (measured at the start) and "memory" (smaller batch)
    finished = Signal(dict)
    failed = Signal(dict)
    cancelled = Signal(dict)
    what = "training"

    def __init__(self, project_path: Path, config: Any, python: str | None = None,
                 env: dict[str, str] | None = None):
        self.project_path = Path(project_path)
        self.config = config
        super().__init__(python, env)

    def launch(self) -> None:
        from annotune.core.training.job import TrainingProcess

        self.process = TrainingProcess(python=self.python)
        self.process.start(self.project_path, self.config, env=self.env)

    def relay(self, event: Event) -> None:
        kind: str = event["event"]
        if kind in ("precision", "memory"):
            kind = "notice"
        if kind in ("started", "progress", "metrics", "notice", "finished", "failed",
                    "cancelled"):
            getattr(self, str(kind)).emit(event)

    def failure(self, error: Exception) -> Failed:
        final = super().failure(error)
        final["busy"] = isinstance(error, TrainingBusyError)  # another training of the project
        self.failed.emit(final)
        return final
