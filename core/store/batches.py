"""Large imports published in steps: their examples stay out of sight until the last step.

A large import writes its rows in many short transactions (core/store/bulk.py), so label
saves from other programs never wait long for the write lock. Until its last transaction the
import is a *batch*: a row in table ``imports`` whose examples are those from ``first_id`` on.
Every read keeps below the lowest unfinished batch (``queries.VISIBLE``) and the kept counters
grow only in the last transaction, which also deletes the row: the import appears whole, at
once. One import publishes at a time; another one (or a small import) is refused meanwhile.

A batch whose importer is gone (killed, crashed, or failed before it could clean up) is
*abandoned*: the next open or import removes its rows in short transactions, deepest ids
first, and deletes the row last, so a kill during the removal leaves a batch that is removed
next time. Its examples were never visible, so nothing anyone saw is lost.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from annotune.core.errors import AnnotuneError
from annotune.core.store.records import inserted_id, now, write_transaction

# Where the importer cannot be checked (another machine on a shared folder, Windows), a batch
# is abandoned once its last step is this old; an import steps several times a second.
STALE_AFTER_S = 600.0
CLEANUP_STEP_S = 0.15  # target length of one removal transaction (like an import step)
CLEANUP_WAIT_S = 60.0
# Pending examples were never counted, so removing them must not count them out either.
REMOVAL_TRIGGERS = ("counters_example_removed", "counters_annotation_removed")
CHILD_TABLES = (("predictions", "example_id"), ("annotation_history", "example_id"),
                ("annotations", "example_id"))
_running_here: set[str] = set()  # owners of the imports running in this process


@dataclass(frozen=True)
class Batch:
    """An import being published: its row in ``imports`` and its first example id."""

    id: int
    first_id: int
    owner: str


class ImportRunningError(AnnotuneError):
    """Another import into the same project is being published."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """Return when a process started (Linux clock ticks since boot); None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    if fields[0] in ("Z", "X"):  # exited, only waiting to be reaped
        return None
    return fields[19]


def owner_name() -> str:
    """Name a new import of this process: host, pid, boot and start time (Linux), a nonce.

    The start time tells this process apart from a later one that got the same pid.
    """
    pid = os.getpid()
    return "|".join([socket.gethostname(), str(pid), _boot_id(), _start_time(pid) or "",
                     secrets.token_hex(6)])


def _alive(owner: str, heartbeat: float) -> bool:
    """Tell whether the import that owns a batch may still be running."""
    try:
        host, pid_text, boot, start, _ = owner.split("|")
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return time.time() - heartbeat < STALE_AFTER_S
    if pid == os.getpid():
        return owner in _running_here
    if boot and start and _boot_id():
        return boot == _boot_id() and _start_time(pid) == start
    if sys.platform == "win32":
        return time.time() - heartbeat < STALE_AFTER_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _describe(row: dict[str, Any]) -> str:
    host, pid = (row["owner"].split("|") + ["?", "?"])[:2]
    return (f"an import of {row['source'] or 'examples'} (process {pid} on {host}, started "
            f"{row['started_at'][:19].replace('T', ' ')} UTC)")


def unfinished(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Return the rows of every unfinished batch with its state: alive or abandoned."""
    rows = list(db.query("SELECT * FROM imports ORDER BY first_id"))
    for row in rows:
        row["alive"] = _alive(row["owner"], row["heartbeat"])
    return rows


def check_none_running(db: sqlite_utils.Database, where: str | None = None) -> None:
    """Refuse to add examples while another batch is unfinished (inside a write transaction).

    New examples get ids above every batch's, so they would stay hidden behind it (or be
    removed with it, were it abandoned).
    """
    for row in unfinished(db):
        state = "is still running" if row["alive"] else "was interrupted"
        raise ImportRunningError(
            f"{_describe(row)} {state}", where=where,
            hint="wait until it finishes, then import again" if row["alive"]
            else "import again: opening the project removes what the interrupted import wrote")


def begin(db: sqlite_utils.Database, source: str | None, where: str | None = None) -> Batch:
    """Register a new batch inside the caller's write transaction (holding the write lock)."""
    check_none_running(db, where)
    last = db.execute("SELECT COALESCE(MAX(id), 0) FROM examples").fetchone()[0]
    owner = owner_name()
    cursor = db.execute("INSERT INTO imports (first_id, source, owner, started_at, heartbeat) "
                        "VALUES (?, ?, ?, ?, ?)", [last + 1, source, owner, now(), time.time()])
    _running_here.add(owner)
    return Batch(id=inserted_id(cursor), first_id=last + 1, owner=owner)


def touch(db: sqlite_utils.Database, batch: Batch) -> None:
    """Record a step of the batch (inside its transaction); fail if it was removed meanwhile."""
    cursor = db.execute("UPDATE imports SET heartbeat = ? WHERE id = ? AND owner = ?",
                        [time.time(), batch.id, batch.owner])
    if cursor.rowcount == 0:
        raise AnnotuneError("this import was stopped: another program found it abandoned and "
                            "removed what it had written",
                            hint="import the file again; nothing of it was kept")


def finish(db: sqlite_utils.Database, batch: Batch, added: int, annotated: int) -> None:
    """Make the batch part of the project: count its examples and drop its row (one step)."""
    touch(db, batch)
    db.execute("UPDATE counters SET n = n + ? WHERE name = 'examples'", [added])
    db.execute("UPDATE counters SET n = n + ? WHERE name = 'accepted'", [annotated])
    db.execute("DELETE FROM imports WHERE id = ?", [batch.id])
    _running_here.discard(batch.owner)


def release(batch: Batch) -> None:
    """Stop treating a batch of this process as running (it is abandoned from now on)."""
    _running_here.discard(batch.owner)


def clean_up(db: sqlite_utils.Database) -> int:
    """Remove every abandoned batch (deepest first); return how many examples went with them."""
    if db.execute("SELECT 1 FROM imports LIMIT 1").fetchone() is None:
        return 0
    removed = 0
    for row in reversed(unfinished(db)):
        if not row["alive"]:
            removed += remove(db, row["id"])
    return removed


def remove(db: sqlite_utils.Database, batch_id: int) -> int:
    """Delete a batch's rows in short transactions, then the batch itself; return the count.

    Foreign keys are off meanwhile: the children are deleted explicitly, range by range, and a
    cascade would check the history's self-reference row by row without an index to help.
    """
    conn = db.conn
    keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    removed, rows = 0, 2000
    try:
        while True:
            with write_transaction(db, CLEANUP_WAIT_S):
                found = conn.execute("SELECT first_id FROM imports WHERE id = ?",
                                     [batch_id]).fetchone()
                if found is None:  # another program removed it meanwhile
                    return removed
                first = found[0]
                upper = conn.execute("SELECT MIN(first_id) FROM imports WHERE first_id > ?",
                                     [first]).fetchone()[0] or 2**63 - 1
                top = conn.execute("SELECT MAX(id) FROM examples WHERE id >= ? AND id < ?",
                                   [first, upper]).fetchone()[0]
                if top is None:
                    for table, column in CHILD_TABLES:
                        conn.execute(f"DELETE FROM {table} WHERE {column} >= ? AND {column} < ?",
                                     [first, upper])
                    conn.execute("DELETE FROM imports WHERE id = ?", [batch_id])
                    return removed
                low = max(first, top - rows + 1)
                started = time.perf_counter()
                triggers = drop_triggers(db, REMOVAL_TRIGGERS)
                for table, column in CHILD_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE {column} BETWEEN ? AND ?",
                                 [low, top])
                removed += conn.execute("DELETE FROM examples WHERE id BETWEEN ? AND ?",
                                        [low, top]).rowcount
                for sql in triggers:
                    conn.execute(sql)
            spent = time.perf_counter() - started
            rows = max(200, min(50_000, int(rows * CLEANUP_STEP_S / max(spent, 1e-3))))
    finally:
        conn.execute(f"PRAGMA foreign_keys = {int(keys)}")


def drop_triggers(db: sqlite_utils.Database, names: tuple[str, ...]) -> list[str]:
    """Drop the named triggers (inside the caller's transaction); return their SQL."""
    marks = ", ".join("?" * len(names))
    found = db.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                       f"AND name IN ({marks})", names).fetchall()
    for name, _ in found:
        db.execute(f"DROP TRIGGER {name}")
    return [sql for _, sql in found]
