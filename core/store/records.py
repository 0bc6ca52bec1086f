"""The plain records the store hands out: examples, annotations, import summaries."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) quotes with
from typing import Any

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


def now() -> str:
    """Return the current UTC time as an ISO 8601 string with microseconds (sortable)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def dumps(value: Any) -> str:
    """Serialize JSON compactly and deterministically (sorted keys keep hashes stable)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


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
    return Example(id=row["id"], fields=json.loads(row["fields"]), split=row["split"],
                   source=row["source"], line=row["line"], source_id=row["source_id"],
                   meta=json.loads(row["meta"] or "{}"))


def annotation_from_row(row: dict[str, Any]) -> StoredAnnotation:
    return StoredAnnotation(example_id=row["example_id"], payload=json.loads(row["payload"]),
                            status=row["status"], annotator=row["annotator"],
                            updated_at=row["updated_at"])


@contextlib.contextmanager
def write_transaction(db: Any) -> Iterator[Any]:
    """Run a read-then-write change holding SQLite's write lock from its first statement.

    A plain (deferred) transaction that reads and then writes cannot wait for another writer:
    SQLite refuses the upgrade at once with "database is locked", whatever the busy timeout,
    so a label saved while pre-annotation or the training job writes a page would be lost.
    BEGIN IMMEDIATE takes the lock up front, where the 30 s busy timeout applies: the save
    waits the few milliseconds the other writer needs. Inside a transaction already open it
    is a savepoint, like ``db.atomic()``.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
