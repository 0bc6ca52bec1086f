"""Train a prepared run spec in every process a launcher started; rank 0 keeps the record.

``python -m annotune.core.training.job RUN_DIR`` runs it in one process; under ``torchrun
--nproc-per-node N`` or ``accelerate launch --num_processes N`` it runs in N processes (and on
several machines through the launchers' own flags). Every process reads the spec and its data
snapshot (core/training/spec.py, checked against their sha256), joins the process group
(core/training/distributed.py) and runs the one training loop.

Rank 0 alone writes. It holds ``RUN_DIR/training.lock`` while it trains (a second launch on
the same folder is refused), keeps ``status.json`` (core/training/spec_record.py), appends every
event to ``events.jsonl`` and prints it on stdout (the job's JSON lines), saves the best
checkpoint, ``run.json`` and ``validation.jsonl``, and at the end records the run in the
project it was prepared from when that file is reachable. A run folder trains once: a finished
or recorded run is refused (a recorded run points at its model); an attempt that failed or was
cancelled without being recorded starts over.

A process that fails leaves its reason in the launcher's store (distributed.report_failure),
so rank 0 records the first cause, not the broken connection the others saw.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.events import (
    Cancelled,
    Emit,
    Event,
    Failed,
    RunEnd,
    TrainingFinished,
    TrainingStarted,
)
from annotune.core.store.records import now
from annotune.core.store.runs import TrainingBusyError
from annotune.core.store.training_lock import TrainingLock, holder
from annotune.core.training import distributed
from annotune.core.training.job_process import EXIT_CANCELLED, EXIT_FAILED, EXIT_FINISHED
from annotune.core.training.spec import RunSpec, load_spec
from annotune.core.training.spec_record import (
    EVENTS_FILE,
    MODEL_DIR,
    STATUS_FILE,
    lock_path,
    read_status,
    record_in_file,
    write_status,
)
from annotune.core.training.stopping import StopControl, StopRequested

EXIT_CODES = {"finished": EXIT_FINISHED, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
# What an attempt leaves in the run folder; a new attempt starts without any of it
OUTPUTS = (MODEL_DIR, MODEL_DIR + ".partial", "run.json", "validation.jsonl", "error.log",
           STATUS_FILE, EVENTS_FILE)


def train_spec(run_dir: str | os.PathLike[str], emit: Emit, stop: StopControl) -> int:
    """Train the run spec in ``run_dir`` as this process's rank; return the exit code."""
    if distributed.process_rank() == 0:
        return _lead(Path(run_dir), emit, stop)
    return _follow(Path(run_dir), stop)


def _lead(run_dir: Path, emit: Emit, stop: StopControl) -> int:
    """Rank 0: train, and keep the run's record."""
    spec = load_spec(run_dir)
    lock = TrainingLock(lock_path(spec.folder))
    if not lock.acquire():
        raise _busy(spec)
    with lock:
        _refuse_when_done(spec)
        for name in OUTPUTS:  # an earlier attempt's, which failed or was cancelled
            target = spec.folder / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        journal = _Journal(spec, emit, stop)
        lock.describe(since=journal.state["started_at"], run_dir=str(spec.folder))
        ranks: Any = distributed.Ranks()
        result = None
        try:
            ranks = distributed.start(spec.config)
            task, train_items, validation_items = _inputs(spec)
            journal.started(task, ranks, len(train_items), len(validation_items))
            from annotune.core.training.loop import train

            result = train(task, spec.settings, spec.config, train_items, validation_items,
                           spec.folder, journal.emit, stop, ranks=ranks)
        except StopRequested:
            stop.finishing()
            other = distributed.failure_elsewhere()
            journal.end("failed" if other else "cancelled", error=other)
        except AnnotuneError as error:
            stop.finishing()
            journal.end("failed", error=str(error))
        except Exception as error:
            stop.finishing()
            log = spec.folder / "error.log"
            log.write_text(traceback.format_exc())
            other = distributed.failure_elsewhere()
            if other is None and _lost_peer(error):
                other = (f"another process of the run ended or stopped answering ({error}); "
                         "the launcher's output names the process that failed first")
            message = other or (f"training stopped by an unexpected error: "
                                f"{type(error).__name__}: {error} (details in {log})")
            journal.end("failed", error=message, log=str(log))
        else:
            stop.finishing()
            journal.end(result.status, result=result)
        finally:
            ranks.close()
        journal.record_and_announce()
    return EXIT_CODES[journal.state["status"]]


def _follow(run_dir: Path, stop: StopControl) -> int:
    """Any other rank: train alongside rank 0, write nothing, say why it failed."""
    ranks: Any = distributed.Ranks()
    try:
        spec = load_spec(run_dir)
        ranks = distributed.start(spec.config)
        task, train_items, validation_items = _inputs(spec)
        from annotune.core.training.loop import train

        result = train(task, spec.settings, spec.config, train_items, validation_items,
                       spec.folder, None, stop, ranks=ranks)
        return EXIT_CODES[result.status]
    except StopRequested:
        return EXIT_CANCELLED
    except Exception as error:
        message = str(error) if isinstance(error, AnnotuneError) else (
            f"{type(error).__name__}: {error}")
        if not _lost_peer(error):  # a cause, not the echo of another process's end
            distributed.report_failure(message)
        print(f"annotune: process {distributed.process_rank()}: {message}", file=sys.stderr)
        if not isinstance(error, AnnotuneError):
            traceback.print_exc()
        return EXIT_FAILED
    finally:
        ranks.close()


def _inputs(spec: RunSpec) -> tuple[Any, list[Any], list[Any]]:
    from annotune.core.plugins import registry

    task = registry().task(spec.task)
    return task, spec.items("train"), spec.items("validation")


def _lost_peer(error: BaseException) -> bool:
    """Tell whether a collective failed because another process ended or stopped answering."""
    import torch.distributed as dist

    return isinstance(error, getattr(dist, "DistError", ())) or any(
        phrase in str(error) for phrase in ("Connection closed by peer", "Connection reset",
                                            "Timed out", "NCCL"))


def _busy(spec: RunSpec) -> TrainingBusyError:
    who = holder(lock_path(spec.folder))
    details = ", ".join(part for part in (
        f"process {who['pid']}" if who.get("pid") else "",
        f"on {who['host']}" if who.get("host") and who["host"] != socket.gethostname() else "",
        f"since {who['since']}" if who.get("since") else "") if part)
    return TrainingBusyError("this run folder is being trained already"
                             + (f" ({details})" if details else ""), where=str(spec.folder),
                             hint="wait for that training to end, or prepare another run "
                                  "folder")


def _refuse_when_done(spec: RunSpec) -> None:
    """Refuse to train again a run that finished or was recorded: its model is the result."""
    try:
        state = read_status(spec.folder)
    except AnnotuneError:  # a damaged status of an earlier attempt: that attempt is lost
        return
    if state is None:
        return
    recorded = state.get("recorded") or {}
    if recorded or state["status"] == "finished":
        where_recorded = (f" and recorded as run {recorded.get('run_id')} of "
                          f"{recorded.get('project')}" if recorded else "")
        raise AnnotuneError(f"this run has {state['status']} already{where_recorded}",
                            where=str(spec.folder),
                            hint="prepare a new run folder to train again" + (
                                "" if recorded else "; record this one with `annotune "
                                                    "record-run PROJECT RUN_DIR`"))


def _device_label(device: dict[str, Any]) -> str:
    """Say where a run trains, e.g. ``cuda (2 × NVIDIA H100 80GB HBM3, fp32)``."""
    processes = device.get("processes")
    name = device.get("name")
    if processes:
        machines = device.get("machines") or 1
        name = f"{processes} × {name}" + (f" on {machines} machines" if machines > 1 else "")
    return f"{device.get('device')} ({name}, {device.get('precision')})"


class _Journal:
    """Rank 0's account of the run: status.json, events.jsonl and the job's event stream."""

    def __init__(self, spec: RunSpec, emit: Emit, stop: StopControl):
        self.spec, self.out, self.stop = spec, emit, stop
        self.clock = time.monotonic()
        self.end_event: RunEnd | None = None
        self.events = (spec.folder / EVENTS_FILE).open("a", encoding="utf-8")
        self.state: dict[str, Any] = {
            "status": "running", "spec_id": spec.id, "started_at": now(), "ended_at": None,
            "duration_s": None, "pid": os.getpid(), "host": socket.gethostname(),
            "processes": distributed.launched_processes(), "machines": None,
            "device_label": None, "best_epoch": None, "metrics": None, "error": None,
            "epochs": [], "recorded": None}
        write_status(spec.folder, self.state)

    def started(self, task: Any, ranks: Any, train_examples: int, validation_examples: int
                ) -> None:
        from annotune.core.training.device import describe_device

        device = {**describe_device(self.spec.config), **ranks.describe()}
        self.state.update(device_label=_device_label(device), machines=device.get("machines"))
        write_status(self.spec.folder, self.state)
        self.emit(TrainingStarted(
            event="started", run_id=None, run_dir=str(self.spec.folder), device=device,
            device_label=self.state["device_label"], task=task.name,
            base_model=self.spec.config.base_model, train_examples=train_examples,
            validation_examples=validation_examples, processes=ranks.world_size))

    def emit(self, event: Event) -> None:
        """Keep an event in events.jsonl (and an epoch in status.json); pass it on."""
        with self.stop.deferred():  # a stop request never cuts a line in two
            if event["event"] == "metrics":
                self.state["epochs"].append({
                    "epoch": event["epoch"], "created": now(),
                    "metrics": {**event["metrics"], "train_loss": event["train_loss"]}})
                write_status(self.spec.folder, self.state)
            self.events.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            self.events.flush()
        self.out(event)

    def end(self, status: str, error: str | None = None, result: Any = None,
            log: str | None = None) -> None:
        """Write the run's end into status.json; the event follows once it is recorded."""
        model = self.spec.folder / MODEL_DIR
        kept = result is not None and result.artifact_dir is not None
        if result is not None and result.device:
            self.state["device_label"] = _device_label(result.device)  # the precision used
        self.state.update(status=status, error=error, ended_at=now(),
                          duration_s=round(time.monotonic() - self.clock, 2),
                          best_epoch=result.best_epoch if result is not None else None,
                          metrics=(result.metrics or None) if result is not None else None,
                          artifact_dir=MODEL_DIR if kept else None)
        write_status(self.spec.folder, self.state)
        self.end_event = _end_event(status, run_dir=str(self.spec.folder),
                                    artifact_dir=str(model) if kept else None,
                                    metrics=self.state["metrics"],
                                    best_epoch=self.state["best_epoch"],
                                    duration_s=self.state["duration_s"], error=error, log=log)

    def record_and_announce(self) -> None:
        """Record the run in its project when the file is reachable; emit the end event."""
        assert self.end_event is not None, "end() comes first"
        project = self.spec.project_path
        note = None
        if project and Path(project).is_file():
            try:
                run_id, _ = record_in_file(project, self.spec.folder)
                self.end_event["run_id"], self.end_event["recorded_in"] = run_id, project
            except Exception as error:  # the run stays complete in its folder
                note = f"the run could not be recorded in {project}: {error}"
        else:
            note = f"the project {project or '(unknown)'} is not reachable from here"
        if note is not None:
            command = f"annotune record-run {project or 'PROJECT'} {self.spec.folder}"
            self.end_event["record_command"] = command
            print(f"annotune: {note}; record the run with: {command}", file=sys.stderr)
        self.emit(self.end_event)
        self.events.close()


def _end_event(status: str, *, run_dir: str, artifact_dir: str | None,
               metrics: dict[str, Any] | None, best_epoch: int | None, duration_s: float | None,
               error: str | None, log: str | None) -> RunEnd:
    """Build the event that ends a prepared run: finished, cancelled or failed."""
    if status == "finished":
        return TrainingFinished(event="finished", run_id=None, run_dir=run_dir,
                                artifact_dir=artifact_dir, metrics=metrics,
                                best_epoch=best_epoch, duration_s=duration_s)
    if status == "cancelled":
        return Cancelled(event="cancelled", run_id=None, run_dir=run_dir,
                         artifact_dir=artifact_dir, metrics=metrics, best_epoch=best_epoch,
                         duration_s=duration_s)
    return Failed(event="failed", run_id=None, run_dir=run_dir, artifact_dir=artifact_dir,
                  metrics=metrics, best_epoch=best_epoch, duration_s=duration_s,
                  error=error or "the training failed", log=log)
