"""Record training runs, their epochs, and model predictions per example.

A run is "running" only while its training process holds the project's training lock
(training_lock.py). Reading the runs closes those whose process is gone, so a killed training
shows as failed the next time anything looks, and never as running forever.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

import sqlite_utils

from annotune.core.errors import AnnotuneError
from annotune.core.run_record import JsonObject
from annotune.core.store import bulk, training_lock
from annotune.core.store.records import (
    RUN_STATUSES,
    dumps,
    inserted_id,
    loads,
    now,
    write_transaction,
)

ABANDONED = "the training process ended without recording its end (killed or crashed)"


class TrainingBusyError(AnnotuneError):
    """Another training of the same project is running; this one was not started."""


@dataclass(frozen=True)
class StoredPrediction:
    """The latest prediction stored for an example."""

    example_id: int
    source: str  # a bundle path or a run id
    payload: dict[str, Any]
    score: float | None
    created_at: str


def create_run(db: sqlite_utils.Database, config: dict[str, Any], device: str) -> int:
    """Insert a run in status 'running' and return its id.

    Only the holder of the project's training lock creates runs that stay running: reading
    the runs closes a running run when nobody holds the lock.
    """
    cursor = db.execute(
        "INSERT INTO runs (created_at, status, config, device) VALUES (?, 'running', ?, ?)",
        [now(), dumps(config), device])
    return inserted_id(cursor)


def _require(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
    if not rows:
        raise AnnotuneError(f"no run {run_id} in this project",
                            hint="list runs with `annotune runs PROJECT`")
    return rows[0]


def record_epoch(db: sqlite_utils.Database, run_id: int, epoch: int,
                 metrics: dict[str, Any]) -> None:
    """Store (or replace) the metrics of one epoch of a run."""
    _require(db, run_id)
    db.execute("INSERT OR REPLACE INTO run_epochs (run_id, epoch, metrics, created_at) "
               "VALUES (?, ?, ?, ?)", [run_id, epoch, dumps(metrics), now()])


def finish_run(db: sqlite_utils.Database, run_id: int, status: str,
               metrics: dict[str, Any] | None = None, artifact_dir: str | None = None,
               error: str | None = None, only_running: bool = False) -> bool:
    """Close a run as finished, failed or cancelled, with its duration since creation.

    With ``only_running`` a run that has already ended is left as it is (someone else
    recorded its end first). Return whether the run was changed.
    """
    if status not in RUN_STATUSES or status == "running":
        raise AnnotuneError(f"a run cannot finish with status '{status}'",
                            hint="use finished, failed or cancelled")
    row = _require(db, run_id)
    finished = now()
    duration = (datetime.fromisoformat(finished)
                - datetime.fromisoformat(row["created_at"])).total_seconds()
    cursor = db.execute(
        "UPDATE runs SET status = ?, metrics = ?, artifact_dir = ?, error = ?, duration_s = ?, "
        "finished_at = ? WHERE id = ?" + (" AND status = 'running'" if only_running else ""),
        [status, None if metrics is None else dumps(metrics),
         None if artifact_dir is None else str(artifact_dir), error, duration, finished, run_id])
    return cursor.rowcount > 0


def add_ended_run(db: sqlite_utils.Database, origin: str, config: dict[str, Any], device: str,
                  status: str, created_at: str, finished_at: str, duration_s: float | None,
                  metrics: dict[str, Any] | None = None, artifact_dir: str | None = None,
                  error: str | None = None,
                  epochs: Iterable[tuple[int, dict[str, Any], str]] = ()) -> tuple[int, bool]:
    """Record a run that trained outside the project (a prepared run spec); return (id, added).

    ``origin`` names the run for good (the run spec's id, which ``config["run_spec"]["id"]``
    holds): a run already recorded with that origin is returned as it is, never added twice.
    The row and its ``epochs`` (epoch, metrics, created_at) are one transaction, and the row is
    never "running", so no training lock is involved.
    """
    if status not in RUN_STATUSES or status == "running":
        raise AnnotuneError(f"a run cannot be recorded with status '{status}'",
                            hint="only finished, failed and cancelled runs are recorded")
    with write_transaction(db):
        known = list(db.query("SELECT id FROM runs WHERE json_extract(config, '$.run_spec.id') "
                              "= ? ORDER BY id LIMIT 1", [origin]))
        if known:
            return int(known[0]["id"]), False
        cursor = db.execute(
            "INSERT INTO runs (created_at, status, config, device, duration_s, metrics, "
            "artifact_dir, error, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [created_at, status, dumps({**config, "run_spec": {**config.get("run_spec", {}),
                                                               "id": origin}}),
             device, duration_s, None if metrics is None else dumps(metrics),
             artifact_dir, error, finished_at])
        run_id = inserted_id(cursor)
        for epoch, epoch_metrics, at in epochs:
            db.execute("INSERT OR REPLACE INTO run_epochs (run_id, epoch, metrics, created_at) "
                       "VALUES (?, ?, ?, ?)", [run_id, int(epoch), dumps(epoch_metrics), at])
    return run_id, True


def end_run_in_file(project_path: str | os.PathLike[str], run_id: int, status: str,
                    error: str, timeout: float = 1.0) -> bool:
    """Close a still-running run from outside its training process (or from a thread of it).

    Opens a connection of its own that waits at most ``timeout`` seconds for the write lock:
    used when the training process was killed, or is about to end without its main thread.
    Return whether the run was changed; a project that cannot be written is left alone.
    """
    try:
        connection = sqlite3.connect(str(project_path), timeout=timeout)
    except sqlite3.Error:
        return False
    try:
        return finish_run(sqlite_utils.Database(connection), run_id, status, error=error,
                          only_running=True)
    except (sqlite3.Error, AnnotuneError):
        return False
    finally:
        connection.close()


def stored_folder(folder: str | os.PathLike[str], project_dir: str | os.PathLike[str]) -> str:
    """Return how a run's folder is stored: relative to the project's folder when inside it.

    A relative path moves with the project: ``annotune export`` finds the run from any
    working directory, and a project folder copied elsewhere keeps its runs. A folder outside
    the project's folder is stored absolute.
    """
    absolute = Path(os.path.abspath(folder))
    base = Path(os.path.abspath(project_dir))
    if absolute == base or base in absolute.parents:
        return absolute.relative_to(base).as_posix()
    return str(absolute)


def resolve_folder(stored: str, project_dir: str | os.PathLike[str],
                   canonical: str | os.PathLike[str] | None = None) -> str:
    """Return the absolute folder a stored run path names, for projects old and new.

    New projects store paths relative to the project's folder. Older ones stored them
    relative to the working directory of the training, or absolute: a relative path is
    tried against the project's folder first, then the working directory; a path that
    names no folder any more (a project moved with its runs) falls back to ``canonical``,
    where this project keeps that run, when it exists there.
    """
    path = Path(stored)
    candidates = [path] if path.is_absolute() else [Path(project_dir) / path, path]
    for candidate in candidates:
        if candidate.exists():
            return os.path.abspath(candidate)
    if canonical is not None and Path(canonical).exists():
        return os.path.abspath(canonical)
    return os.path.abspath(candidates[0])


def lock_path(runs_dir: str | os.PathLike[str]) -> Path:
    """The training lock of the project whose runs live in ``runs_dir``."""
    return Path(runs_dir) / training_lock.LOCK_NAME


def end_abandoned_runs(db: sqlite_utils.Database, ids: Iterable[int] | None = None) -> list[int]:
    """Mark running runs as failed because their process is gone; return their ids.

    Call it holding the training lock (all running runs are abandoned then), or with the
    ``ids`` seen running before the lock was found free: a run that a live training created
    after that look is never among them, and one that ended meanwhile is no longer running.
    """
    running = [row["id"] for row in db.query("SELECT id FROM runs WHERE status = 'running'")]
    if ids is not None:
        wanted = set(ids)
        running = [run_id for run_id in running if run_id in wanted]
    ended = []
    for run_id in running:
        last_seen = next(iter(db.query(
            "SELECT MAX(created_at) AS at FROM run_epochs WHERE run_id = ?", [run_id])))["at"]
        row = _require(db, run_id)
        # the process died at an unknown moment: the duration runs to its last recorded epoch
        duration = ((datetime.fromisoformat(last_seen)
                     - datetime.fromisoformat(row["created_at"])).total_seconds()
                    if last_seen else None)
        cursor = db.execute("UPDATE runs SET status = 'failed', error = ?, duration_s = ?, "
                            "finished_at = ? WHERE id = ? AND status = 'running'",
                            [ABANDONED, duration, now(), run_id])
        if cursor.rowcount:
            ended.append(run_id)
    return ended


def close_abandoned(db: sqlite_utils.Database, runs_dir: str | os.PathLike[str] | None
                    ) -> set[int]:
    """Mark the running runs of a project as failed when no training process holds its lock.

    Return the ids of the abandoned runs that could not be written (a read-only project):
    they are shown as failed all the same.
    """
    if runs_dir is None:
        return set()
    running = [row["id"] for row in db.query("SELECT id FROM runs WHERE status = 'running'")]
    if not running or not training_lock.is_free(lock_path(runs_dir)):
        return set()
    try:
        end_abandoned_runs(db, running)
    except sqlite3.OperationalError:  # read-only file or folder, or a lock held too long
        return set(running)
    return set()


def busy_error(db: sqlite_utils.Database, runs_dir: str | os.PathLike[str],
               where: str | None = None) -> TrainingBusyError:
    """Describe the training that holds the project's lock, for a start that must not happen."""
    holder = training_lock.holder(lock_path(runs_dir))
    rows = list(db.query("SELECT id, created_at FROM runs WHERE status = 'running' "
                         "ORDER BY id DESC LIMIT 1"))
    parts = []
    if rows:
        parts += [f"run {rows[0]['id']}", f"started at {_shown_time(rows[0]['created_at'])}"]
    elif holder.get("since"):
        parts.append(f"starting since {_shown_time(holder['since'])}")
    if holder.get("pid"):
        process = f"process {holder['pid']}"
        if holder.get("host") and holder["host"] != socket.gethostname():
            process += f" on {holder['host']}"
        parts.append(process)
    details = f" ({', '.join(parts)})" if parts else ""
    return TrainingBusyError(f"a training of this project is already running{details}",
                             where=where, hint="wait for it or stop it")


def _shown_time(iso: str) -> str:
    """An ISO time as the user reads it: local time, to the second."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return str(iso)


class RunEpoch(TypedDict):
    """One recorded epoch of a run: its metrics (with train_loss) and when it ended."""

    epoch: int
    metrics: JsonObject
    created: str


class RunRow(TypedDict):
    """A run as the project records it (``Project.runs``): JSON-ready, paths absolute."""

    id: int
    created: str
    status: str  # running, finished, failed or cancelled
    config: JsonObject  # TrainConfig.to_dict()
    device: str | None
    duration_s: float | None
    metrics: JsonObject | None  # the best epoch's
    artifact_dir: str | None
    error: str | None
    finished: str | None
    epochs: list[RunEpoch]


def _run_dict(db: sqlite_utils.Database, row: dict[str, Any],
              runs_dir: str | os.PathLike[str] | None) -> RunRow:
    epochs = [RunEpoch(epoch=e["epoch"], metrics=loads(e["metrics"]), created=e["created_at"])
              for e in db.query("SELECT * FROM run_epochs WHERE run_id = ? ORDER BY epoch",
                                [row["id"]])]
    return {"id": row["id"], "created": row["created_at"], "status": row["status"],
            "config": loads(row["config"]), "device": row["device"],
            "duration_s": row["duration_s"], "metrics": loads(row["metrics"]),
            "artifact_dir": _artifact_dir(row, runs_dir), "error": row["error"],
            "finished": row["finished_at"], "epochs": epochs}


def _artifact_dir(row: dict[str, Any], runs_dir: str | os.PathLike[str] | None) -> str | None:
    """The run's checkpoint folder as an absolute path (as stored without the runs folder)."""
    stored = row["artifact_dir"]
    if stored is None or runs_dir is None:
        return stored
    canonical = Path(runs_dir) / str(row["id"]) / Path(stored).name
    return resolve_folder(stored, Path(runs_dir).parent, canonical)


def runs(db: sqlite_utils.Database, runs_dir: str | os.PathLike[str] | None = None
         ) -> list[RunRow]:
    """Return every run as a JSON-ready dict, oldest first (the last one is the newest).

    With the project's ``runs_dir`` (beside the project file), runs whose training process is
    gone are closed first, and stored folders are resolved against the project's folder.
    """
    unwritten = close_abandoned(db, runs_dir)
    return [_shown(_run_dict(db, row, runs_dir), unwritten)
            for row in db.query("SELECT * FROM runs ORDER BY id")]


def run(db: sqlite_utils.Database, run_id: int, runs_dir: str | os.PathLike[str] | None = None
        ) -> RunRow:
    """Return one run as ``runs`` does."""
    unwritten = close_abandoned(db, runs_dir)
    return _shown(_run_dict(db, _require(db, run_id), runs_dir), unwritten)


def _shown(record: RunRow, abandoned: set[int]) -> RunRow:
    if record["id"] in abandoned and record["status"] == "running":
        record["status"], record["error"] = "failed", ABANDONED
    return record


def save_predictions(db: sqlite_utils.Database,
                     source: str | int, items: Iterable[tuple[int, dict[str, Any], float | None]]
                     ) -> int:
    """Store predictions of one source in one transaction; return how many were written.

    Each (example, source) keeps only its newest prediction. The example's ``latest_score``
    follows the newest prediction of any source: uncertainty order reads that indexed column.
    The rows are written by the same statements as pre-annotation's pages (bulk.py).
    """
    rows = list(items)
    return bulk.save_predictions(db, source, [row[0] for row in rows], [row[1] for row in rows],
                                 [row[2] for row in rows])


def prediction(db: sqlite_utils.Database, example_id: int, source: str | int | None = None
               ) -> StoredPrediction | None:
    """Return the newest prediction of an example (from one source, or any)."""
    sql = "SELECT * FROM predictions WHERE example_id = ?"
    params: list[object] = [example_id]
    if source is not None:
        sql, params = sql + " AND source = ?", [*params, str(source)]
    rows = list(db.query(sql + " ORDER BY created_at DESC, rowid DESC LIMIT 1", params))
    if not rows:
        return None
    row = rows[0]
    return StoredPrediction(example_id=row["example_id"], source=row["source"],
                            payload=loads(row["payload"]), score=row["score"],
                            created_at=row["created_at"])
