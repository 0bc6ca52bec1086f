"""Turn import records into table rows and write them: what both ways of importing share.

``RowMaker`` serializes records (JSON of fields, meta and annotations, content hash) and drops
texts repeated within the file; it touches no database, so it runs outside the write lock.
``RowWriter`` inserts one chunk of rows with their annotations, then (``follow``) their history
and, when the per-row triggers are swapped out, their search index entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlite_utils

from annotune.core.errors import AnnotuneError
from annotune.core.store.records import SPLITS, ImportSummary, dumps, fields_json, hash_json

Rows = dict[str, tuple[tuple[Any, ...], str | None]]  # hash -> (example values, annotation)

INSERT = """
INSERT INTO examples (fields, text, split, source, line, hash, meta, source_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
INSERT_ANNOTATION = """
INSERT INTO annotations (example_id, payload, status, annotator, updated_at)
VALUES (?, ?, 'accepted', 'import', ?)
"""
# The new examples' annotations are all imported ones, so one statement copies them into the
# history (completed by a WHERE on the new ids).
HISTORY_FROM_IMPORT = """
INSERT INTO annotation_history (example_id, action, new_payload, new_status, annotator,
    created_at)
SELECT example_id, 'import', payload, status, annotator, updated_at FROM annotations
"""
FTS_FROM_EXAMPLES = "INSERT INTO examples_fts (rowid, text) SELECT id, text FROM examples "
HASH_CHUNK = 500  # bound parameters per IN (...) lookup
FEW_PAYLOADS = 64  # distinct annotations written by one CASE expression


class _Encoder:
    """Serialize meta and annotation objects, reusing the text of values seen before.

    Imported files repeat a few labels and one meta object a million times; dumps() costs
    microseconds, a dictionary lookup a tenth of that.
    """

    def __init__(self) -> None:
        self.cache: dict[Any, str] = {}

    def __call__(self, value: dict[str, Any]) -> str:
        try:
            key = tuple(value.items())
            text = self.cache.get(key)
        except TypeError:  # unhashable values (lists, nested objects): no cache
            return dumps(value)
        if text is None:
            text = self.cache[key] = dumps(value)
            if len(self.cache) > 10_000:  # values that never repeat: stop caching them
                self.cache.clear()
        return text


class RowMaker:
    """Serialize ImportRecords into INSERT values keyed by content hash, file order kept."""

    def __init__(self, source: str | None, summary: ImportSummary,
                 keep_repeated_texts: bool = False):
        self.source, self.summary = source, summary
        self.keep_repeated_texts = keep_repeated_texts
        self.meta_json, self.annotation_json = _Encoder(), _Encoder()
        # every hash of the file so far (duplicates within it) → the kept row's annotation
        self.seen: dict[str, str | None] = {}

    def rows(self, records: Iterable[Any]) -> Rows:
        """Serialize records; a text seen before in the file is counted as a duplicate."""
        rows: Rows = {}
        seen, source, duplicates = self.seen, self.source, self.summary.duplicate_lines
        meta_json, annotation_json = self.meta_json, self.annotation_json
        for record in records:
            fields = record.fields
            try:
                serialized = fields_json(fields)  # importers hand over str → str already
            except TypeError:
                fields = {str(k): str(v) for k, v in dict(fields).items()}
                serialized = fields_json(fields)
            split = record.split
            if split is not None and split not in SPLITS:
                raise AnnotuneError(f"unknown split '{split}'",
                                    where=f"{source or 'import'}:{record.line}",
                                    hint=f"use one of: {', '.join(SPLITS)}")
            digest = hash_json(serialized if not self.keep_repeated_texts
                               else f"{serialized}\x00{source}:{record.line}")
            annotation = record.annotation
            if digest in seen:
                duplicates.append(record.line)
                if annotation is not None and annotation_json(annotation) != seen[digest]:
                    self.summary.conflicting_lines.append(record.line)
                continue
            payload = seen[digest] = (None if annotation is None
                                      else annotation_json(annotation))
            rows[digest] = ((serialized, "\n".join(fields.values()), split, source,
                             record.line, digest, meta_json(record.meta or {}),
                             record.source_id), payload)
        return rows


def drop_existing(db: sqlite_utils.Database, rows: Rows, summary: ImportSummary) -> None:
    """Remove rows whose text the project holds already, counting them as duplicates.

    A duplicate whose annotation differs from the stored example's (or whose example is
    unlabeled or skipped) is also noted in ``conflicting_lines``: the stored one is kept.
    Run inside the write transaction that inserts the rows, so the answer is exact.
    """
    hashes = list(rows)
    for start in range(0, len(hashes), HASH_CHUNK):
        chunk = hashes[start:start + HASH_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for digest, stored, status in db.execute(
                "SELECT h.hash, a.payload, a.status FROM example_hashes h LEFT JOIN annotations "
                f"a ON a.example_id = h.example_id WHERE h.hash IN ({marks})", chunk):
            values, payload = rows.pop(digest)
            summary.duplicate_lines.append(values[4])
            if payload is not None and (status != "accepted" or stored is None
                                        or json.loads(stored) != json.loads(payload)):
                summary.conflicting_lines.append(values[4])


def _insert_few_payloads(conn: Any, rows: Rows, before: int, time: str) -> bool:
    """Insert annotations drawn from a few distinct payloads (labels) in one statement.

    The rows' payload numbers travel as one JSON array that SQLite walks with json_each: a
    third of the cost of binding a million rows one by one. Returns False (nothing written)
    when the payloads are too varied for one CASE expression (spans, answers).
    """
    numbers: dict[str, int] = {}
    order: list[int | None] = []
    for _, payload in rows.values():
        if payload is None:
            order.append(None)
            continue
        number = numbers.setdefault(payload, len(numbers))
        if number >= FEW_PAYLOADS:
            return False
        order.append(number)
    if not numbers:
        return True
    cases = " ".join(f"WHEN {n} THEN ?" for n in range(len(numbers)))
    conn.execute("INSERT INTO annotations (example_id, payload, status, annotator, updated_at) "
                 f"SELECT key + ?, CASE value {cases} END, 'accepted', 'import', ? "
                 "FROM json_each(?) WHERE value IS NOT NULL ORDER BY key",
                 [before + 1, *numbers, time, json.dumps(order)])
    return True


class RowWriter:
    """Insert chunks of rows and their annotations, history and (optionally) search index.

    ``index_search``: the search index's insert trigger is swapped out, so ``follow`` fills
    the index itself with one INSERT ... SELECT per chunk.
    """

    def __init__(self, db: sqlite_utils.Database, summary: ImportSummary, time: str,
                 index_search: bool):
        self.db, self.conn, self.summary, self.time = db, db.conn, summary, time
        self.index_search = index_search

    def insert(self, rows: Rows) -> int | None:
        """Insert one chunk's examples and annotations; return the largest id before them.

        None: the id space ran out and SQLite picked free ids, so everything (history and
        index too) was written here, row by row.
        """
        conn, time = self.conn, self.time
        before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM examples").fetchone()[0]
        conn.executemany(INSERT, (values for values, _ in rows.values()))
        last = conn.execute("SELECT MAX(id) FROM examples").fetchone()[0]
        self.summary.added += len(rows)
        self.summary.annotated += sum(payload is not None for _, payload in rows.values())
        if last == before + len(rows):  # row i got id before + 1 + i, as SQLite does
            if not _insert_few_payloads(conn, rows, before, time):
                conn.executemany(INSERT_ANNOTATION, (
                    (example_id, payload, time) for example_id, (_, payload)
                    in zip(range(before + 1, last + 1), rows.values(), strict=True)
                    if payload is not None))
            return before
        # The id space ran out (ids near 2**63) and SQLite picked free ones: ask for them.
        found = dict(conn.execute("SELECT hash, id FROM examples"))  # one scan, rare case
        pairs = [(found[digest], payload) for digest, (_, payload) in rows.items()]
        conn.executemany(INSERT_ANNOTATION, ((example_id, payload, time)
                                            for example_id, payload in pairs
                                            if payload is not None))
        conn.executemany(HISTORY_FROM_IMPORT + "WHERE example_id = ?",
                         ((example_id,) for example_id, payload in pairs
                          if payload is not None))
        if self.index_search:
            conn.executemany(FTS_FROM_EXAMPLES + "WHERE id = ?",
                             ((example_id,) for example_id, _ in pairs))
        return None

    def follow(self, before: int) -> None:
        """Copy the new annotations into the history and (bulk) the texts into the index."""
        self.conn.execute(HISTORY_FROM_IMPORT + "WHERE example_id > ?", [before])
        if self.index_search:
            self.conn.execute(FTS_FROM_EXAMPLES + "WHERE id > ?", [before])
