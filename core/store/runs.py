"""Record training runs, their epochs, and model predictions per example."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from annotune.core.errors import AnnotuneError
from annotune.core.store import bulk
from annotune.core.store.records import RUN_STATUSES, dumps, loads, now


@dataclass(frozen=True)
class StoredPrediction:
    """The latest prediction stored for an example."""

    example_id: int
    source: str  # a bundle path or a run id
    payload: dict[str, Any]
    score: float | None
    created_at: str


def create_run(db: sqlite_utils.Database, config: dict[str, Any], device: str) -> int:
    """Insert a run in status 'running' and return its id."""
    cursor = db.execute(
        "INSERT INTO runs (created_at, status, config, device) VALUES (?, 'running', ?, ?)",
        [now(), dumps(config), device])
    return int(cursor.lastrowid)


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
               error: str | None = None) -> None:
    """Close a run as finished, failed or cancelled, with its duration since creation."""
    if status not in RUN_STATUSES or status == "running":
        raise AnnotuneError(f"a run cannot finish with status '{status}'",
                            hint="use finished, failed or cancelled")
    row = _require(db, run_id)
    finished = now()
    duration = (datetime.fromisoformat(finished)
                - datetime.fromisoformat(row["created_at"])).total_seconds()
    db.execute("UPDATE runs SET status = ?, metrics = ?, artifact_dir = ?, error = ?, "
               "duration_s = ?, finished_at = ? WHERE id = ?",
               [status, None if metrics is None else dumps(metrics),
                None if artifact_dir is None else str(artifact_dir), error, duration,
                finished, run_id])


def _run_dict(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    epochs = [{"epoch": e["epoch"], "metrics": loads(e["metrics"]), "created": e["created_at"]}
              for e in db.query("SELECT * FROM run_epochs WHERE run_id = ? ORDER BY epoch",
                                [row["id"]])]
    return {"id": row["id"], "created": row["created_at"], "status": row["status"],
            "config": loads(row["config"]), "device": row["device"],
            "duration_s": row["duration_s"], "metrics": loads(row["metrics"]),
            "artifact_dir": row["artifact_dir"], "error": row["error"],
            "finished": row["finished_at"], "epochs": epochs}


def runs(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Return every run as a JSON-ready dict, oldest first (the last one is the newest)."""
    return [_run_dict(db, row) for row in db.query("SELECT * FROM runs ORDER BY id")]


def run(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    return _run_dict(db, _require(db, run_id))


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
    sql, params = "SELECT * FROM predictions WHERE example_id = ?", [example_id]
    if source is not None:
        sql, params = sql + " AND source = ?", [*params, str(source)]
    rows = list(db.query(sql + " ORDER BY created_at DESC, rowid DESC LIMIT 1", params))
    if not rows:
        return None
    row = rows[0]
    return StoredPrediction(example_id=row["example_id"], source=row["source"],
                            payload=loads(row["payload"]), score=row["score"],
                            created_at=row["created_at"])
