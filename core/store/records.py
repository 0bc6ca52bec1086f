"""The plain records the store hands out: examples, annotations, import summaries."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) quotes with
from typing import Any

from annotune.core.store.failures import ProjectBusyError, StoredValueError, is_busy

STATUSES = ("accepted", "skipped")
FILTER_STATUSES = ("unlabeled", "accepted", "skipped")
RUN_STATUSES = ("running", "finished", "failed", "cancelled")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    """One stored example: its task fields and where it came from."""

    id: int
    fields: dict[str, str]
    split: str | None = None
    source: str | None = None
    line: int | None = None
    source_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredAnnotation:
    """The current annotation of one example."""

    example_id: int
    payload: dict[str, Any]
    status: str  # "accepted" or "skipped"
    annotator: str
    updated_at: str


@dataclass
class ImportSummary:
    """What one add_examples call wrote; duplicates are counted, never dropped silently."""

    added: int = 0
    duplicates: int = 0
    annotated: int = 0
    duplicate_lines: list[int] = field(default_factory=list)  # lines of the skipped duplicates
    # lines of duplicates that carried an annotation other than the kept example's (the file's
    # label was not applied: a user must hear it, or a corrected file looks imported)
    conflicting_lines: list[int] = field(default_factory=list)
    steps: int = 0  # write transactions of a large import (0: one transaction)
    longest_step_s: float = 0.0  # the longest time one of them held the write lock


def now() -> str:
    """Return the current UTC time as an ISO 8601 string with microseconds (sortable)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def dumps(value: Any) -> str:
    """Serialize JSON compactly and deterministically (sorted keys keep hashes stable)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """Return the row id the INSERT run by ``cursor`` created."""
    if cursor.lastrowid is None:  # sqlite3 sets it for every INSERT; None means no INSERT ran
        raise RuntimeError("no row was inserted")
    return cursor.lastrowid


def loads(text: str | None, place: str = "a value stored in the project") -> Any:
    """Parse stored JSON; a value that is not JSON is a StoredValueError naming ``place``."""
    try:
        return None if text is None else json.loads(text)
    except (ValueError, TypeError) as error:
        raise StoredValueError(place, text if isinstance(text, str) else repr(text),
                               error) from None


def fields_json(fields: dict[str, str]) -> str:
    """Serialize text fields exactly as ``dumps`` does, several times faster (imports)."""
    if len(fields) == 1:
        for key, value in fields.items():
            return f"{{{encode_basestring(key)}:{encode_basestring(value)}}}"
    return "{" + ",".join(f"{encode_basestring(k)}:{encode_basestring(fields[k])}"
                          for k in sorted(fields)) + "}"


def hash_json(serialized_fields: str) -> str:
    """Hash the serialized task fields (``fields_json``): the example's content hash."""
    return hashlib.sha256(serialized_fields.encode("utf-8")).hexdigest()


def content_hash(fields: dict[str, str]) -> str:
    """Hash the task fields of an example: equal texts are one example (dedupe on import)."""
    return hash_json(dumps(fields))


def search_text(fields: dict[str, str]) -> str:
    """Join the task fields into the plain text column that the FTS index covers."""
    return "\n".join(str(value) for value in fields.values())


def example_from_row(row: dict[str, Any]) -> Example:
    try:
        fields, meta = json.loads(row["fields"]), json.loads(row["meta"] or "{}")
    except (ValueError, TypeError):
        # the slow path names the column; the fast one above costs nothing extra
        fields = loads(row["fields"], f"the fields of example {row['id']} (table examples)")
        meta = loads(row["meta"] or "{}", f"the meta of example {row['id']} (table examples)")
    if not isinstance(fields, dict):
        raise StoredValueError(f"the fields of example {row['id']} (table examples)",
                               row["fields"], ValueError("not a JSON object"))
    return Example(id=row["id"], fields=fields, split=row["split"], source=row["source"],
                   line=row["line"], source_id=row["source_id"], meta=meta)


def payload_from(text: str | None, example_id: int, table: str = "annotations") -> Any:
    """Parse an annotation payload, naming the example and table when it is not JSON."""
    try:
        return None if text is None else json.loads(text)
    except (ValueError, TypeError):
        return loads(text, f"the payload of example {example_id} (table {table})")


def annotation_from_row(row: dict[str, Any]) -> StoredAnnotation:
    return StoredAnnotation(example_id=row["example_id"],
                            payload=payload_from(row["payload"], row["example_id"]),
                            status=row["status"], annotator=row["annotator"],
                            updated_at=row["updated_at"])


# How long a change waits for the write lock before it gives up with ProjectBusyError. An
# import publishes in steps of about 0.15 s and a page of predictions or a training epoch takes
# milliseconds, so only a program that holds the lock far longer than any annotune step
# makes a save wait this long.
WRITE_WAIT_S = 10.0
BUSY_TIMEOUT_MS = 30_000  # what plain statements wait (sqlite3.connect(timeout=30))
_POLL_FIRST_S, _POLL_MAX_S = 0.0005, 0.002


def begin_immediate(db: Any, wait_s: float | None = None) -> None:
    """Start a transaction that holds the write lock, waiting up to ``wait_s`` for it.

    SQLite's own busy handler sleeps ever longer between tries (up to 100 ms), so against an
    import that frees the lock for a few milliseconds between its steps it keeps missing the
    gap. This polls every 2 ms at most instead (each try costs microseconds).
    """
    conn = db.conn
    wait_s = WRITE_WAIT_S if wait_s is None else wait_s
    started = time.monotonic()
    delay = _POLL_FIRST_S
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if not is_busy(error):
                    raise
                if time.monotonic() - started >= wait_s:
                    raise ProjectBusyError(wait_s) from None
            time.sleep(delay)
            delay = min(delay * 1.5, _POLL_MAX_S)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


@contextlib.contextmanager
def write_transaction(db: Any, wait_s: float | None = None) -> Iterator[Any]:
    """Run a read-then-write change holding SQLite's write lock from its first statement.

    A plain (deferred) transaction that reads and then writes cannot wait for another writer:
    SQLite refuses the upgrade at once with "database is locked", whatever the busy timeout,
    so a label saved while pre-annotation or an import writes would be lost. BEGIN IMMEDIATE
    takes the lock up front (``begin_immediate`` waits for it up to ``wait_s``, by default
    ``WRITE_WAIT_S``, then raises
    ProjectBusyError): the change waits the few milliseconds the other writer needs. Inside a
    transaction already open it is a savepoint, like ``db.atomic()``.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    begin_immediate(db, wait_s)
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
