"""The parent's side of the training job: start the child, read its events, stop it.

The child (job.py) runs in a session of its own with a lifeline (core/lifeline.py): a Ctrl-C
in the terminal or a crash of the window never reaches it by accident, and it ends within a
fraction of a second when this process dies. ``stop`` asks it to stop and kills it when it has
not within STOP_GRACE_S; ``kill`` does not ask. Whatever ends the child, the run it leaves
running is recorded here: cancelled after a stop, failed when it died on its own.

This module imports no torch: the desktop imports it in the GUI process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from annotune.core import events
from annotune.core.errors import AnnotuneError
from annotune.core.events import Cancelled, Event, Failed, is_end, read_event
from annotune.core.lifeline import child_options
from annotune.core.training.config import TrainConfig

EXIT_FINISHED, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 130
END_EVENTS = events.END_EVENTS
# A stop request ends the child at once before its training loop runs, and at the next step
# or evaluation batch once it runs; a step (or checkpoint save) that takes longer is cut
# short by a kill after this long, so a stop always ends within about 3 s.
STOP_GRACE_S = 2.0


class TrainingProcess:
    """Start a training job as a child process, read its events, stop it.

    The child runs in its own session (process group), so ``stop`` can signal the whole group;
    it watches this process through its stdin and ends when this process does.
    """

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable
        self.process: subprocess.Popen[str] | None = None
        self.project_path: Path | None = None
        self.run_id: int | None = None
        self.log_path: Path | None = None  # the child's stderr (warnings, library logs)
        self.ended: Event | None = None  # the finished/failed/cancelled event
        self._stopping: str | None = None  # why the run ends when the child cannot say it

    def start(self, project_path: str | Path, config: TrainConfig | Mapping[str, Any] | None
              = None, env: Mapping[str, str] | None = None) -> None:
        """Start the job for a project; events() then yields what it reports.

        Raises TrainingBusyError at once when another training of the project is running
        (the child checks again, exactly, under the project's training lock). Start it from
        a thread that outlives the child: on Linux the kernel ends a child in its start-up
        when the thread that started it ends.
        """
        if self.process is not None and self.process.poll() is None:
            raise AnnotuneError("a training job is already running",
                                hint="wait for it to finish or stop it first")
        if not isinstance(config, TrainConfig):
            config = TrainConfig.from_dict(config or {})
        self.project_path = Path(project_path)
        _refuse_when_busy(self.project_path)
        self.run_id, self.ended, self._stopping = None, None, None
        handle, name = tempfile.mkstemp(prefix="annotune-train-", suffix=".log")
        self.log_path = Path(name)
        child_env = {"PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                     "TRANSFORMERS_VERBOSITY": "error", **(env or {})}
        with os.fdopen(handle, "w") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "annotune.core.training.job", "--project",
                 str(self.project_path), "--config", json.dumps(config.to_dict())],
                stdout=subprocess.PIPE, stderr=log, text=True, encoding="utf-8", bufsize=1,
                **child_options(child_env))

    def events(self) -> Iterator[Event]:
        """Yield the job's events until it exits; a job that dies silently yields failed."""
        if self.process is None or self.process.stdout is None:
            raise AnnotuneError("no training job was started")
        for line in self.process.stdout:
            event = read_event(line)
            if event is None:
                continue
            if event["event"] == "started":
                run_id = event.get("run_id")
                self.run_id = run_id if isinstance(run_id, int) else None
            if is_end(event):
                self.ended = event
            yield event
        code = self.process.wait()
        self._close_lifeline()
        if self.ended is None:
            if self._stopping:
                self.ended = Cancelled(event="cancelled", run_id=self.run_id, forced=True)
                self._record_end("cancelled", self._stopping)
            else:
                error = (f"the training process ended unexpectedly ({describe_exit(code)}): "
                         f"{self._log_tail()}")
                self.ended = Failed(event="failed", run_id=self.run_id, log=str(self.log_path),
                                    error=error)
                self._record_end("failed", error)
            yield self.ended
        elif self.ended["event"] == "finished" and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)  # nothing went wrong: no log to keep

    def stop(self, timeout: float = STOP_GRACE_S) -> None:
        """Ask the job to stop; kill it if it has not stopped after ``timeout`` seconds."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self._stopping = self._stopping or "stopped on request"
        try:
            _signal_group(process, hard=False)
            process.wait(timeout)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            self._kill(f"stopped by force: it had not stopped {timeout:g} s after the request")

    def kill(self) -> None:
        """Stop the job at once (a second stop request): kill it and record it as cancelled."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self._kill("stopped at once on a second request")

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the job to exit and return its exit code."""
        if self.process is None:
            raise AnnotuneError("no training job was started")
        return self.process.wait(timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _kill(self, why: str) -> None:
        process = self.process
        assert process is not None
        self._stopping = why
        try:
            _signal_group(process, hard=True)
        except ProcessLookupError:
            pass
        process.wait()
        self._record_end("cancelled", why)

    def _close_lifeline(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return "no log"
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail) or "no output"

    def _record_end(self, status: str, error: str) -> None:
        """Close a run the child could not close itself (killed, crashed)."""
        if self.run_id is None or self.project_path is None:
            return  # a run it created without saying so is closed by the next look at the runs
        from annotune.core.store.runs import end_run_in_file

        end_run_in_file(self.project_path, self.run_id, status, error, timeout=10.0)


def _refuse_when_busy(project_path: Path) -> None:
    """Raise TrainingBusyError when a training of the project holds its lock."""
    from annotune.core.store import Project
    from annotune.core.store.runs import busy_error, lock_path
    from annotune.core.store.training_lock import is_free

    with Project.open(project_path) as project:
        if not is_free(lock_path(project.runs_dir)):
            raise busy_error(project.db, project.runs_dir, where=str(project.path))


def describe_exit(code: int | None) -> str:
    """Say how a process ended: "exit code 1", "killed by signal 9 (SIGKILL)"."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {-code} ({name})"
    return f"exit code {code}"


def _signal_group(process: subprocess.Popen[str], hard: bool) -> None:
    """Ask the child's group to stop (SIGINT; Ctrl+Break on Windows), or kill it when hard."""
    if sys.platform != "win32":
        os.killpg(process.pid, signal.SIGKILL if hard else signal.SIGINT)
    elif hard:
        process.kill()
    else:
        process.send_signal(signal.CTRL_BREAK_EVENT)
