"""Write annotations with their history, and walk that history back and forth (undo/redo).

The history is one linear stack per project, like an editor's: every save or skip pushes an
entry in state 'done'; undo turns the newest 'done' entry into 'undone' and restores what it
replaced; redo re-applies the oldest 'undone' entry; a new change drops the 'undone' tail.
Undo and redo are themselves written to the history (state NULL) so the audit trail is whole.
Each function runs in its own transaction and commits before it returns.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from annotune.core.store.queries import VISIBLE_LIMIT
from annotune.core.store.records import (
    StoredAnnotation,
    annotation_from_row,
    dumps,
    now,
    payload_from,
    write_transaction,
)

UPSERT = """
INSERT INTO annotations (example_id, payload, status, annotator, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (example_id) DO UPDATE SET payload = excluded.payload, status = excluded.status,
    annotator = excluded.annotator, updated_at = excluded.updated_at
"""
HISTORY = """
INSERT INTO annotation_history (example_id, action, old_payload, old_status, old_annotator,
    new_payload, new_status, annotator, created_at, state, target)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def current(db: sqlite_utils.Database, example_id: int) -> StoredAnnotation | None:
    """Return the current annotation of an example, or None when it has none."""
    rows = list(db.query("SELECT * FROM annotations WHERE example_id = ?", [example_id]))
    return annotation_from_row(rows[0]) if rows else None


def _write(db: sqlite_utils.Database, example_id: int, payload: str | None, status: str | None,
           annotator: str | None, time: str) -> None:
    """Set an example's current annotation; a None payload removes it (back to unlabeled)."""
    if payload is None:
        db.execute("DELETE FROM annotations WHERE example_id = ?", [example_id])
    else:
        db.execute(UPSERT, [example_id, payload, status, annotator or "user", time])


def change(db: sqlite_utils.Database, example_id: int, payload: dict[str, Any], status: str,
           annotator: str) -> None:
    """Store a new annotation (save or skip) and push it on the undo stack."""
    time = now()
    with write_transaction(db):
        old = current(db, example_id)
        new_payload = dumps(payload)
        _write(db, example_id, new_payload, status, annotator, time)
        # A new change after undo makes the undone entries unreachable, as in an editor.
        db.execute("UPDATE annotation_history SET state = 'dropped' WHERE state = 'undone'")
        db.execute(HISTORY, [
            example_id, "save" if status == "accepted" else "skip",
            dumps(old.payload) if old else None, old.status if old else None,
            old.annotator if old else None,
            new_payload, status, annotator, time, "done", None])


def undo(db: sqlite_utils.Database, who: str = "user") -> int | None:
    """Revert the newest change still in effect; return its example id (None: nothing to undo)."""
    return _replay(db, who, "undo")


def redo(db: sqlite_utils.Database, who: str = "user") -> int | None:
    """Re-apply the oldest undone change; return its example id (None: nothing to redo)."""
    return _replay(db, who, "redo")


def _replay(db: sqlite_utils.Database, who: str, action: str) -> int | None:
    """Step through the linear history: undo the newest done entry or redo the oldest undone.

    The annotation goes back to the entry's old side (undo) or forward to its new side (redo);
    the step itself is recorded too, pointing at the entry it replayed, for the audit.
    """
    undoing = action == "undo"
    next_state = "undone" if undoing else "done"
    with write_transaction(db):
        entry = _next_entry(db, action)
        if entry is None:
            return None
        old = (entry["old_payload"], entry["old_status"], entry["old_annotator"])
        new = (entry["new_payload"], entry["new_status"], entry["annotator"])
        current, target = (new, old) if undoing else (old, new)
        time = now()
        _write(db, entry["example_id"], *target, time)
        db.execute("UPDATE annotation_history SET state = ? WHERE id = ?",
                   [next_state, entry["id"]])
        db.execute(HISTORY, [entry["example_id"], action, *current, target[0], target[1], who,
                             time, None, entry["id"]])
        return entry["example_id"]


def _next_entry(db: sqlite_utils.Database, action: str) -> dict[str, Any] | None:
    """Return the history row undo (the newest done) or redo (the oldest undone) replays."""
    state, order = ("done", "DESC") if action == "undo" else ("undone", "ASC")
    rows = list(db.query("SELECT * FROM annotation_history WHERE state = ? "
                         f"ORDER BY id {order} LIMIT 1", [state]))
    return rows[0] if rows else None


def next_step(db: sqlite_utils.Database, action: str) -> dict[str, Any] | None:
    """Say which change undo (or redo) would replay next: its entry id, example, who, when.

    A program sharing the project with others looks before it steps back, in the same
    transaction, so it never takes back another program's change unawares.
    """
    row = _next_entry(db, action)
    if row is None:
        return None
    return {"id": row["id"], "example_id": row["example_id"], "action": row["action"],
            "who": row["annotator"], "at": row["created_at"]}


def can_undo(db: sqlite_utils.Database) -> bool:
    return db.execute("SELECT 1 FROM annotation_history WHERE state = 'done' LIMIT 1"
                      ).fetchone() is not None


def can_redo(db: sqlite_utils.Database) -> bool:
    return db.execute("SELECT 1 FROM annotation_history WHERE state = 'undone' LIMIT 1"
                      ).fetchone() is not None


def history(db: sqlite_utils.Database, example_id: int | None = None, limit: int = 100
            ) -> list[dict[str, Any]]:
    """Return the newest history entries (of one example, or all), newest first."""
    # "+": filter while walking the history newest first, never sort it by example instead
    where, params = f" WHERE +example_id <= {VISIBLE_LIMIT}", []
    if example_id is not None:
        where, params = where + " AND example_id = ?", [example_id]
    rows = db.query(f"SELECT * FROM annotation_history{where} ORDER BY id DESC LIMIT ?",
                    [*params, limit])
    return [{
        "id": row["id"], "example_id": row["example_id"], "action": row["action"],
        "old": payload_from(row["old_payload"], row["example_id"], "annotation_history"),
        "old_status": row["old_status"],
        "new": payload_from(row["new_payload"], row["example_id"], "annotation_history"),
        "new_status": row["new_status"],
        "who": row["annotator"], "at": row["created_at"], "state": row["state"],
        "target": row["target"],
    } for row in rows]
