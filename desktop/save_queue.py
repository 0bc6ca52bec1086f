"""Write labeling decisions on a thread of their own, in order, and never lose one.

A save can wait for the write lock (another program importing, training or pre-annotating the
same project) and a commit can wait for the disk; neither may freeze the window. The labeling
view hands each decision to ``SaveQueue.submit`` and moves on at once. One thread, with its own
store connection, writes the jobs in the order they came: every job queued by the time it gets
the write lock, in one transaction (``Project.transaction``), each job all or nothing on its
own, so a busy project costs the queue one wait, not one per decision. Jobs refused because
the project stays busy (``ProjectBusyError``) stay at the head of the queue and are tried
again, the view being told (``waiting``); any other refusal is reported (``failed``) and the
other jobs are written.
When the queue has been idle a moment, or after many saves, the thread folds the write-ahead
log into the project file, so a copy of the file made meanwhile holds every label.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QTimer, Signal

from annotune.core.errors import AnnotuneError
from annotune.core.store.failures import ProjectBusyError

log = logging.getLogger("annotune.desktop")

IDLE_CHECKPOINT_S = 2.0  # fold the log into the file after this long without a save
CHECKPOINT_EVERY = 200  # ... and after this many saves in a row
# Each try waits this long for the write lock (polling it) before the view is told that its
# decisions wait; the next try starts at once, with the decisions queued meanwhile.
TRY_S = 1.0


@dataclass(eq=False)
class Job:
    """One write for the queue: ``run(project)`` on the save thread, then ``on_done(result)``."""

    kind: str  # "save", "keep" (entities kept on leaving), "skip", "undo", "redo"
    run: Callable[[Any], Any]
    example_id: int | None = None
    on_done: Callable[[Any], None] | None = None
    submitted: float = field(default_factory=time.perf_counter)
    attempts: int = 0


_STOP = object()


class SaveQueue(QObject):
    """Run store writes in order on one thread with its own connection to ``path``."""

    finished = Signal(object, object)  # job, result
    failed = Signal(object, object)  # job, error: not written, the next job runs
    waiting = Signal(object, object)  # job, ProjectBusyError: kept, tried again
    _done = Signal(object, object, str)  # from the thread: job, result or error, outcome

    def __init__(self, path: Path | str, parent: QObject | None = None,
                 opener: Callable[[Path], Any] | None = None):
        super().__init__(parent)
        if opener is None:
            from annotune.core.store import Project

            opener = Project.open
        self.path, self._opener = Path(path), opener
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._outstanding = 0  # submitted and not yet finished or failed (GUI thread only)
        self._done.connect(self._deliver)  # a slot of this object: runs on its (GUI) thread
        self._thread = threading.Thread(target=self._loop, name="annotune-saves", daemon=True)
        self._thread.start()

    # -- GUI thread --------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        """Queue a write; its outcome arrives as ``finished`` or ``failed`` on this thread."""
        if not self._thread.is_alive():
            raise RuntimeError("the save queue is closed")
        self._outstanding += 1
        self._jobs.put(job)
        return job

    def outstanding(self) -> int:
        """Count the writes submitted and not yet finished or failed."""
        return self._outstanding

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Serve the event loop until every write is done; False if some remain after timeout."""
        if not self._outstanding:
            return True
        deadline = time.monotonic() + timeout_s
        if QCoreApplication.instance() is None:  # no event loop to serve: outcomes can't arrive
            return False
        loop, timer = QEventLoop(), QTimer()

        def check() -> None:
            if not self._outstanding or time.monotonic() >= deadline:
                loop.quit()

        timer.timeout.connect(check)
        timer.start(5)
        loop.exec()
        timer.stop()
        return self._outstanding == 0

    def close(self, timeout_s: float = 30.0) -> bool:
        """Wait for the writes, then stop the thread and close its connection.

        Returns False, leaving everything running, when writes are still waiting after the
        timeout: the caller decides (ask to keep waiting), nothing is dropped here.
        """
        if not self.wait(timeout_s):
            return False
        if self._thread.is_alive():
            self._jobs.put(_STOP)
            self._thread.join(timeout=10)
        return True

    def _deliver(self, job: Job, value: Any, outcome: str) -> None:
        if outcome == "waiting":
            self.waiting.emit(job, value)
            return
        self._outstanding -= 1
        if outcome == "finished":
            if job.on_done is not None:
                job.on_done(value)
            self.finished.emit(job, value)
        else:
            self.failed.emit(job, value)

    # -- save thread -------------------------------------------------------------------------
    def _tell(self, job: Job, value: Any, outcome: str) -> None:
        try:
            self._done.emit(job, value, outcome)
        except RuntimeError:  # the view is gone (the app is closing): no one to tell
            pass

    def _loop(self) -> None:
        project, unsaved = None, 0  # writes since the last checkpoint
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=IDLE_CHECKPOINT_S if unsaved else None)
                except queue.Empty:
                    unsaved = self._checkpoint(project)
                    continue
                if job is _STOP:
                    return
                if project is None:
                    project, job = self._open(job)
                    if project is None:
                        continue
                group, stop = self._with_queued([job])
                self._write(project, group)
                unsaved += len(group)
                if unsaved >= CHECKPOINT_EVERY:
                    unsaved = self._checkpoint(project)
                if stop:
                    return
        finally:
            if project is not None:
                try:
                    project.close()  # checkpoints too
                except Exception:  # closing must not raise on the way out
                    log.exception("closing the save connection failed")

    def _with_queued(self, group: list[Job]) -> tuple[list[Job], bool]:
        """Add every job queued by now to ``group``; also say whether a stop came."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return group, False
            if job is _STOP:
                return group, True
            group.append(job)

    def _open(self, job: Job) -> tuple[Any, Job]:
        try:
            return self._opener(self.path), job
        except Exception as error:  # reported like a refused save; later jobs try again
            self._tell(job, error, "failed")
            return None, job

    def _write(self, project: Any, group: list[Job]) -> None:
        """Write a group of jobs in one transaction, waiting while the project is busy."""
        while True:
            outcomes: list[tuple[str, Any]] = []
            try:
                with project.transaction(wait_s=TRY_S):
                    for job in group:
                        job.attempts += 1
                        try:
                            with project.transaction():  # a savepoint: this job alone
                                outcomes.append(("finished", job.run(project)))
                        except Exception as error:
                            if not isinstance(error, AnnotuneError):
                                log.exception("a %s of example %s failed", job.kind,
                                              job.example_id)
                            outcomes.append(("failed", error))
            except ProjectBusyError as error:
                self._tell(group[0], error, "waiting")
                group, stop = self._with_queued(group)
                if stop:
                    self._jobs.put(_STOP)  # after this group is written
                continue
            except Exception as error:  # the commit itself failed: none of them is written
                log.exception("writing %d decisions failed", len(group))
                for job in group:
                    self._tell(job, error, "failed")
                return
            for job, (outcome, value) in zip(group, outcomes, strict=True):
                self._tell(job, value, outcome)
            return

    @staticmethod
    def _checkpoint(project: Any) -> int:
        if project is not None:
            try:
                project.checkpoint()
            except Exception:  # a later checkpoint or the close will do it
                log.exception("checkpoint failed")
        return 0
