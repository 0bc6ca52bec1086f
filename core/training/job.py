"""The training job: one run in a child process that reports JSON lines, and its parent side.

Child: ``python -m annotune.core.training.job --project PATH --config JSON`` trains one run of
the project and prints one JSON object per line on stdout::

    {"event": "started", "run_id", "device" (describe_device), "device_label", "run_dir",
     "train_examples", "validation_examples"}
    {"event": "progress", "step", "total_steps", "epoch", "loss", "eta_s", "samples_per_s"}
    {"event": "metrics", "epoch", "train_loss", "metrics"}
    {"event": "finished", "run_id", "artifact_dir", "metrics", "best_epoch"}
    {"event": "failed", "error", "log"}     (log: a traceback file, for unexpected errors)
    {"event": "cancelled", "run_id", "artifact_dir"}

SIGINT or SIGTERM lets the current step finish, records the run as cancelled and exits.

Parent: ``TrainingProcess`` starts the child in its own process group, iterates its events and
stops it; the CLI and the desktop both use it. ``run_training_inline`` is the same code path
without a process, for tests and scripts.

This module imports no torch at module level: the desktop imports TrainingProcess in the GUI
process, and the child installs its signal handlers before the slow imports.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from annotune.core.errors import AnnotuneError
from annotune.core.training.config import TrainConfig

Emit = Callable[[dict[str, Any]], None]
EXIT_FINISHED, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 130
END_EVENTS = ("finished", "failed", "cancelled")


def labeled_data(project: Any) -> tuple[list[tuple[dict, dict]], list[tuple[dict, dict]]]:
    """Return (train, validation) items from the project's accepted annotations.

    The examples' split decides; examples of no split train; the test split is left out.
    An empty validation list asks the loop for its automatic stratified split.
    """
    train: list[tuple[dict, dict]] = []
    validation: list[tuple[dict, dict]] = []
    for example, annotation in project.labeled():
        if example.split == "validation":
            validation.append((dict(example.fields), annotation))
        elif example.split != "test":
            train.append((dict(example.fields), annotation))
    return train, validation


def _write_log(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "error.log"
    path.write_text(text)
    return path


def run_training_inline(project: Any, config: TrainConfig | Mapping[str, Any],
                        emit: Emit | None = None, should_stop: Callable[[], bool] | None = None
                        ) -> Any:
    """Train one run of an open project in this process; record it in the store.

    Emits the same events as the job; returns the loop's TrainResult. Errors are recorded on
    the run, emitted as a failed event and raised again.
    """
    from annotune.core.training.data import split_validation
    from annotune.core.training.device import describe_device, device_label
    from annotune.core.training.loop import train

    emit = emit or (lambda event: None)
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config)
    if config.base_model is None and project.base_model:
        config = config.with_(base_model=project.base_model)
    run_id: int | None = None
    run_dir: Path | None = None
    try:
        task = project.task
        train_items, validation_items = labeled_data(project)
        if not train_items and not validation_items:
            raise AnnotuneError("the project has no labeled examples to train on",
                                where=str(project.path),
                                hint="label examples (or import labeled data) first")
        if not validation_items:  # split here, so "started" reports the real sizes
            train_items, validation_items = split_validation(
                train_items, task, config.validation_fraction, config.seed)
        device = describe_device(config)
        label = device_label(device)
        run_id = project.create_run(config.to_dict(), label)
        run_dir = project.runs_dir / str(run_id)
        emit({"event": "started", "run_id": run_id, "device": device, "device_label": label,
              "run_dir": str(run_dir),
              "task": task.name, "base_model": config.base_model,
              "train_examples": len(train_items),
              "validation_examples": len(validation_items)})

        def relay(event: dict[str, Any]) -> None:
            if event.get("event") == "metrics":
                project.record_epoch(run_id, event["epoch"],
                                     {**event["metrics"], "train_loss": event["train_loss"]})
            emit(event)

        result = train(task, project.settings, config, train_items, validation_items, run_dir,
                       relay, should_stop)
    except AnnotuneError as error:
        if run_id is not None:
            project.finish_run(run_id, "failed", error=str(error))
        emit({"event": "failed", "run_id": run_id, "error": str(error), "log": None})
        raise
    except Exception as error:
        log = _write_log(run_dir or project.runs_dir, traceback.format_exc())
        message = f"training stopped by an unexpected error: {type(error).__name__}: {error}"
        if run_id is not None:
            project.finish_run(run_id, "failed", error=f"{message} (details in {log})")
        emit({"event": "failed", "run_id": run_id, "error": message, "log": str(log)})
        raise
    artifact = str(result.artifact_dir) if result.artifact_dir is not None else None
    project.finish_run(run_id, result.status, metrics=result.metrics or None,
                       artifact_dir=artifact)
    emit({"event": result.status, "run_id": run_id, "artifact_dir": artifact,
          "run_dir": str(run_dir), "metrics": result.metrics, "best_epoch": result.best_epoch,
          "duration_s": result.duration_s})
    return result


# -- the child process ----------------------------------------------------------------------


class _StopFlag:
    """Set by SIGINT/SIGTERM; the loop polls it between steps."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, frame: Any) -> None:
        self.requested = True


def _event_stream() -> IO[str]:
    """Keep the real stdout for events only; anything else printed goes to stderr.

    Libraries (and C extensions) print to fd 1; a stray line there would break the parent's
    JSON parsing, so fd 1 is pointed at stderr and events get a private copy of the old fd 1.
    """
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    return events


def _read_config(text: str) -> TrainConfig:
    if not text.lstrip().startswith("{"):
        try:
            text = Path(text).read_text()
        except OSError as error:
            raise AnnotuneError(f"cannot read the training config file: {error}",
                                where=text) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise AnnotuneError(f"the training config is not valid JSON: {error.msg}",
                            where=f"--config (character {error.pos})") from None
    if not isinstance(data, dict):
        raise AnnotuneError("the training config must be a JSON object", where="--config")
    return TrainConfig.from_dict(data)


def main(argv: list[str] | None = None) -> int:
    """Run one training job; return its exit code (0 finished, 1 failed, 130 cancelled)."""
    stop = _StopFlag()
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):  # SIGBREAK: Windows' Ctrl+Break
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop.handle)
    parser = argparse.ArgumentParser(prog="python -m annotune.core.training.job",
                                     description="Train one run of a project; JSON lines out.")
    parser.add_argument("--project", required=True, help="the .annotune project file")
    parser.add_argument("--config", default="{}", help="TrainConfig as JSON, or a JSON file")
    args = parser.parse_args(argv)
    out = _event_stream()

    def emit(event: dict[str, Any]) -> None:
        out.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")

    try:
        from annotune.core.store import Project

        config = _read_config(args.config)
        project = Project.open(args.project)
    except AnnotuneError as error:
        emit({"event": "failed", "run_id": None, "error": str(error), "log": None})
        return EXIT_FAILED
    try:
        result = run_training_inline(project, config, emit, stop)
    except Exception:  # already recorded and emitted as a failed event
        return EXIT_FAILED
    finally:
        project.close()
        out.flush()
    return EXIT_CANCELLED if result.status == "cancelled" else EXIT_FINISHED


# -- the parent side ------------------------------------------------------------------------


class TrainingProcess:
    """Start a training job as a child process, read its events, stop it.

    The child runs in its own session (process group), so a Ctrl+C in a terminal or a crash
    in the GUI never reaches it by accident, and ``stop`` can signal the whole group.
    """

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable
        self.process: subprocess.Popen[str] | None = None
        self.project_path: Path | None = None
        self.run_id: int | None = None
        self.log_path: Path | None = None  # the child's stderr (warnings, library logs)
        self.ended: dict[str, Any] | None = None  # the finished/failed/cancelled event
        self._stopping = False

    def start(self, project_path: str | Path, config: TrainConfig | Mapping[str, Any] | None
              = None, env: Mapping[str, str] | None = None) -> None:
        """Start the job for a project; events() then yields what it reports."""
        if self.process is not None and self.process.poll() is None:
            raise AnnotuneError("a training job is already running",
                                hint="wait for it to finish or stop it first")
        if not isinstance(config, TrainConfig):
            config = TrainConfig.from_dict(config or {})
        self.project_path = Path(project_path)
        self.run_id, self.ended, self._stopping = None, None, False
        handle, name = tempfile.mkstemp(prefix="annotune-train-", suffix=".log")
        self.log_path = Path(name)
        child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                     "TRANSFORMERS_VERBOSITY": "error", **(env or {})}
        with os.fdopen(handle, "w") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "annotune.core.training.job", "--project",
                 str(self.project_path), "--config", json.dumps(config.to_dict())],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
                encoding="utf-8", bufsize=1, env=child_env, **_own_group())

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield the job's events until it exits; a job that dies silently yields failed."""
        if self.process is None or self.process.stdout is None:
            raise AnnotuneError("no training job was started")
        for line in self.process.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "log", "line": line}
            if event.get("event") == "started":
                self.run_id = event.get("run_id")
            if event.get("event") in END_EVENTS:
                self.ended = event
            yield event
        code = self.process.wait()
        if self.ended is None:
            if self._stopping:
                self.ended = {"event": "cancelled", "run_id": self.run_id, "forced": True}
            else:
                self.ended = {"event": "failed", "run_id": self.run_id, "log": str(self.log_path),
                              "error": f"the training process ended unexpectedly (exit code "
                                       f"{code}): {self._log_tail()}"}
                self._record_end("failed", self.ended["error"])
            yield self.ended
        elif self.ended.get("event") == "finished" and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)  # nothing went wrong: no log to keep

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the job to stop after its current step; kill it if it has not after ``timeout``."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self._stopping = True
        try:
            _signal_group(process, hard=False)
            process.wait(timeout)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            try:
                _signal_group(process, hard=True)
            except ProcessLookupError:
                pass
            process.wait()
            self._record_end("cancelled", f"stopped by force after {timeout:g} s")

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the job to exit and return its exit code."""
        if self.process is None:
            raise AnnotuneError("no training job was started")
        return self.process.wait(timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

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
            return
        from annotune.core.store import Project

        try:
            with Project.open(self.project_path) as project:
                if project.run(self.run_id)["status"] == "running":
                    project.finish_run(self.run_id, status, error=error)
        except AnnotuneError:
            pass  # the project is gone or unreadable: nothing left to record into


def _own_group() -> dict[str, Any]:
    """Popen arguments that start the child in a process group of its own."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _signal_group(process: subprocess.Popen[str], hard: bool) -> None:
    """Ask the child's group to stop (SIGINT; Ctrl+Break on Windows), or kill it when hard."""
    if os.name != "nt":
        os.killpg(process.pid, signal.SIGKILL if hard else signal.SIGINT)
    elif hard:
        process.kill()
    else:
        process.send_signal(signal.CTRL_BREAK_EVENT)


if __name__ == "__main__":
    sys.exit(main())
