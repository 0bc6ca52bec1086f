"""Label checks and their issues: which accepted annotations out-of-fold models disagree with.

A check is written in two steps: ``start_check`` records it as running, ``finish_check``
stores all of its issues and its end in one transaction, so a reader sees a check whole or
not at all. A check is "running" only while its process holds the project's label-check lock
(``lock_check``, the training lock's kind on a file of its own): reading the checks closes
those whose process is gone as failed, so a killed check never shows as running forever.
Reviewing never edits these rows except ``kept_at`` ("keep the given label"):
accepting a suggestion or editing goes through the annotations' normal save/undo path, and an
issue whose example's current annotation differs from the checked one reads as changed.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlite_utils

from annotune.core.errors import AnnotuneError
from annotune.core.store import training_lock
from annotune.core.store.failures import ProjectBusyError
from annotune.core.store.records import (
    RUN_STATUSES,
    dumps,
    inserted_id,
    loads,
    now,
    write_transaction,
)

LOCK_NAME = "label-check.lock"
ABANDONED = "the label check process ended without recording its end (killed or crashed)"

# One issue as a check writes it: example id, score, given annotation, suggestion, reasons.
IssueRow = tuple[int, float, dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]


def start_check(db: sqlite_utils.Database, config: dict[str, Any]) -> int:
    """Record a new running check; return its id."""
    with write_transaction(db):
        cursor = db.execute("INSERT INTO label_checks (created_at, status, config) "
                            "VALUES (?, 'running', ?)", [now(), dumps(config)])
        return inserted_id(cursor)


def finish_check(db: sqlite_utils.Database, check_id: int, status: str,
                 issues: Iterable[IssueRow] = (), error: str | None = None) -> int:
    """Store a check's issues and its end together; return how many issues were written."""
    if status not in RUN_STATUSES or status == "running":
        raise AnnotuneError(f"a label check cannot end as '{status}'")
    rows = [(check_id, int(example_id), float(score), dumps(given),
             None if suggestion is None else dumps(suggestion), dumps(reasons))
            for example_id, score, given, suggestion, reasons in issues]
    with write_transaction(db):
        db.conn.executemany("INSERT OR REPLACE INTO label_issues (check_id, example_id, score, "
                            "given, suggestion, reasons) VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.execute("UPDATE label_checks SET status = ?, finished_at = ?, error = ?, examples = ? "
                   "WHERE id = ?", [status, now(), error, len(rows), check_id])
    return len(rows)


def lock_path(runs_dir: str | os.PathLike[str]) -> Path:
    """The label-check lock of the project whose runs live in ``runs_dir``."""
    return Path(runs_dir) / LOCK_NAME


def lock_check(runs_dir: str | os.PathLike[str], where: str | None = None
               ) -> training_lock.TrainingLock:
    """Take the project's label-check lock for this process, or refuse a second check."""
    lock = training_lock.TrainingLock(lock_path(runs_dir))
    if not lock.acquire():
        raise AnnotuneError("a label check of this project is already running", where=where,
                            hint="wait for it to finish or stop it, then check again")
    return lock


def close_abandoned(db: sqlite_utils.Database, runs_dir: str | os.PathLike[str] | None
                    ) -> set[int]:
    """Mark running checks as failed when no process holds the project's label-check lock.

    Only checks seen running before the lock was found free are closed: a check started
    after that look holds the lock. Return the ids that could not be written (a read-only
    project): they are shown as failed all the same.
    """
    if runs_dir is None:
        return set()
    running = [row[0] for row in db.execute(
        "SELECT id FROM label_checks WHERE status = 'running'")]
    if not running or not training_lock.is_free(lock_path(runs_dir)):
        return set()
    marks = ", ".join("?" for _ in running)
    try:
        with write_transaction(db):
            db.execute(f"UPDATE label_checks SET status = 'failed', error = ?, finished_at = ? "
                       f"WHERE status = 'running' AND id IN ({marks})",
                       [ABANDONED, now(), *running])
    except sqlite3.OperationalError:  # read-only file or folder, or a lock held too long
        return set(running)
    except ProjectBusyError:  # another program holds the write lock: the next look closes them
        return set(running)
    return set()


def checks(db: sqlite_utils.Database, runs_dir: str | os.PathLike[str] | None = None
           ) -> list[dict[str, Any]]:
    """Return every check, newest first; with ``runs_dir``, abandoned ones closed first."""
    unwritten = close_abandoned(db, runs_dir)
    found = []
    for row in db.query("SELECT * FROM label_checks ORDER BY id DESC"):
        row = dict(row)
        row["config"] = loads(row["config"], f"label check {row['id']} (table label_checks)")
        if row["id"] in unwritten:
            row.update(status="failed", error=ABANDONED)
        found.append(row)
    return found


def latest_finished(db: sqlite_utils.Database) -> int | None:
    """Return the id of the newest finished check, or None."""
    row = db.execute("SELECT id FROM label_checks WHERE status = 'finished' "
                     "ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else int(row[0])


def issues(db: sqlite_utils.Database, check_id: int, limit: int | None = None
           ) -> list[dict[str, Any]]:
    """Return a check's issues, highest score first, each with the example's current state.

    Keys: example_id, score, given, suggestion, reasons, kept (bool), current (the current
    accepted annotation or None) and state: "open", "kept" or "changed" (the current
    annotation is no longer the one checked: a suggestion accepted, an edit, a skip).
    """
    sql = ("SELECT i.example_id, i.score, i.given, i.suggestion, i.reasons, i.kept_at, "
           "a.payload, a.status FROM label_issues i "
           "LEFT JOIN annotations a ON a.example_id = i.example_id "
           "WHERE i.check_id = ? ORDER BY i.score DESC, i.example_id")
    params: list[Any] = [check_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    found = []
    for row in db.execute(sql, params):
        example_id, score, given, suggestion, reasons, kept_at, payload, status = row
        place = f"label issue of example {example_id} (table label_issues)"
        given_value = loads(given, place)
        current = (loads(payload, f"annotation of example {example_id}")
                   if status == "accepted" else None)
        state = ("changed" if current != given_value else "kept" if kept_at else "open")
        found.append({"example_id": example_id, "score": score, "given": given_value,
                      "suggestion": None if suggestion is None else loads(suggestion, place),
                      "reasons": loads(reasons, place), "kept": kept_at is not None,
                      "current": current, "state": state})
    return found


def keep(db: sqlite_utils.Database, check_id: int, example_id: int, kept: bool = True) -> None:
    """Mark an issue reviewed with the given annotation kept (or open again)."""
    with write_transaction(db):
        cursor = db.execute("UPDATE label_issues SET kept_at = ? WHERE check_id = ? "
                            "AND example_id = ?", [now() if kept else None, check_id, example_id])
        if cursor.rowcount == 0:
            raise AnnotuneError(f"label check {check_id} has no issue for example {example_id}")
