"""A prepared run's state in its folder, and its record in the project it was prepared from.

Rank 0 of the processes that train a run spec keeps ``RUN_DIR/status.json`` (status, when it
started and ended, the processes, every epoch's metrics, the best epoch's metrics, the error)
and holds ``RUN_DIR/training.lock`` while it trains (core/store/training_lock.py: the kernel
lets it go when the process dies, however it dies). A run whose status says "running" while
nobody holds its lock ended without recording its end.

``record_in_project`` turns that state into a run of the project, like any run the project
trained itself: `annotune runs` lists it and `annotune export` exports it from the run folder
where it is. The training records its run itself when the project file is reachable from rank
0; `annotune record-run PROJECT RUN_DIR` records it otherwise (once: the spec's id is kept in
the run's config, so recording it again finds the first record).

Torch-free: the CLI records runs without importing torch.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.store import runs as run_records
from annotune.core.store import training_lock
from annotune.core.store.records import now
from annotune.core.training.spec import RunSpec, load_spec, write_replacing

STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"
MODEL_DIR = "model"


def lock_path(run_dir: str | os.PathLike[str]) -> Path:
    """The lock rank 0 holds while it trains the run in ``run_dir``."""
    return Path(run_dir) / training_lock.LOCK_NAME


def read_status(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return the run's status.json, or None when the run has never started."""
    path = Path(run_dir) / STATUS_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise AnnotuneError(f"the run's status.json cannot be read ({error})", where=str(path),
                            hint="train the run again") from None
    if not isinstance(state, dict) or state.get("status") not in run_records.RUN_STATUSES:
        raise AnnotuneError("the run's status.json holds no run status", where=str(path),
                            hint="train the run again")
    return state


def write_status(run_dir: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Replace the run's status.json in one step (a reader never sees half of it)."""
    text = json.dumps(state, indent=2, ensure_ascii=False, default=str) + "\n"
    write_replacing(Path(run_dir) / STATUS_FILE, text)


def record_in_file(project_path: str | os.PathLike[str], run_dir: str | os.PathLike[str]
                   ) -> tuple[int, bool]:
    """Open the project at ``project_path`` and record the run in it (``record_in_project``)."""
    from annotune.core.store import Project

    with Project.open(Path(project_path)) as project:
        return record_in_project(project, run_dir)


def record_in_project(project: Any, run_dir: str | os.PathLike[str]) -> tuple[int, bool]:
    """Record the ended run of ``run_dir`` in ``project``; return (run id, newly recorded).

    Refuses a run prepared from another project, a run that has not started, and a run still
    training. A run left "running" by a process that is gone is recorded as failed.
    """
    spec = load_spec(run_dir)
    _check_project(project, spec)
    state = read_status(spec.folder)
    if state is None:
        raise AnnotuneError("the run has not been trained yet (no status.json)",
                            where=str(spec.folder),
                            hint="train it first: torchrun --nproc-per-node N -m "
                                 "annotune.core.training.job RUN_DIR")
    status, error = state["status"], state.get("error")
    if status == "running":
        _refuse_while_training(spec, state)
        status, error = "failed", run_records.ABANDONED
    model = spec.folder / MODEL_DIR
    keeps_model = (status != "failed" and state.get("best_epoch") is not None
                   and (model / "config.json").is_file())
    config = {**spec.config.to_dict(),
              "run_spec": {"id": spec.id, "dir": str(spec.folder),
                           "processes": state.get("processes"),
                           "machines": state.get("machines")}}
    run_id, added = run_records.add_ended_run(
        project.db, spec.id, config, str(state.get("device_label") or "unknown"), status,
        created_at=str(state.get("started_at") or spec.prepared_at),
        finished_at=str(state.get("ended_at") or now()), duration_s=state.get("duration_s"),
        metrics=state.get("metrics") if status != "failed" else None,
        artifact_dir=str(model) if keeps_model else None, error=error,
        epochs=[(e["epoch"], e["metrics"], e["created"]) for e in state.get("epochs", [])])
    if added:
        try:  # a read-only copy of the run folder still records; it just cannot say so
            write_status(spec.folder, {**state, "recorded": {"project": str(project.path),
                                                             "run_id": run_id}})
        except (OSError, AnnotuneError):
            pass
    return run_id, added


def _check_project(project: Any, spec: RunSpec) -> None:
    same = project.task_name == spec.task and (spec.project_created is None
                                               or project.created == spec.project_created)
    if not same:
        raise AnnotuneError(
            f"the run in {spec.folder} was prepared from another project "
            f"({spec.project_path or 'unknown'}, task {spec.task})", where=str(project.path),
            hint="record it in the project it was prepared from")


def _refuse_while_training(spec: RunSpec, state: dict[str, Any]) -> None:
    """Raise unless the process that trained the run is gone (its lock is free, here)."""
    host = state.get("host")
    who = f"process {state.get('pid')}" + (f" on {host}" if host else "")
    if not training_lock.is_free(lock_path(spec.folder)):
        raise AnnotuneError(f"the run is still training ({who})", where=str(spec.folder),
                            hint="record it when it has ended (it records itself when it can "
                                 "reach the project)")
    if host and host != socket.gethostname():
        raise AnnotuneError(f"the run's status says it is still training ({who})",
                            where=str(spec.folder),
                            hint=f"record it when it has ended, or on {host}, where its lock "
                                 "tells whether its process is still alive")
