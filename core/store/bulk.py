"""Add many examples at once (one transaction, duplicates found by content hash), and store
many predictions at once (one transaction per page).

A million-row import spends its time in SQLite, so the large path does as little per row as
it can (measured on a 2-core machine, see docs/benchmarks.md):

- rows go in with ``executemany`` over prepared INSERTs on the raw connection;
- per-row triggers (the FTS5 index, the counters) are dropped inside the transaction, the index
  is filled with one INSERT ... SELECT and the counters with one UPDATE, then the triggers are
  put back; schema changes are transactional, so if anything fails they were never gone;
- an import at least as large as the project also drops the content-hash index and rebuilds
  it after the insert in one sorted pass (duplicates were removed before, so it cannot fail);
- the history rows of imported annotations are copied by one INSERT ... SELECT (SQLite
  evaluates the table's CHECK lists once per statement, not once per row);
- the JSON of fields, meta and annotations is written by cached or specialised encoders;
- ``synchronous = NORMAL`` (still crash-safe in WAL mode) and a large page cache only while
  the import runs; both are restored afterwards;
- Python's cyclic garbage collector is paused while the records are read and written: records
  and rows hold no reference cycles, yet each full collection walks every object alive, a
  fifth of the CPU time of an import (collections resume when the import ends).

Pre-annotation reads a project a page at a time in id order (``id > last`` walks the primary
key: no OFFSET that rescans the pages before, and examples labeled meanwhile shift nothing) and
stores each page's predictions with two ``executemany`` statements in one short transaction, so
the desktop's own saves never wait long for the write lock.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import sqlite_utils

from annotune.core.errors import AnnotuneError
from annotune.core.store.queries import UNLABELED
from annotune.core.store.records import (
    SPLITS,
    ImportSummary,
    dumps,
    fields_json,
    hash_json,
    now,
)

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
# Triggers that fire once per inserted example or annotation: swapped out for bulk work.
ROW_TRIGGERS = ("examples_ai", "counters_example_added", "counters_annotation_added")
BULK_FROM = 1000  # below this many rows, the triggers are cheaper than swapping them out
BULK_CACHE_KIB = 256 * 1024  # page cache while a large import runs
HASH_CHUNK = 500  # bound parameters per IN (...) lookup
CHUNK = 50_000  # records serialized while the worker indexes the chunk before
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


def _existing_hashes(db: sqlite_utils.Database, hashes: list[str]) -> set[str]:
    found: set[str] = set()
    if db.execute("SELECT 1 FROM examples LIMIT 1").fetchone() is None:
        return found  # a new project: nothing to look up
    for start in range(0, len(hashes), HASH_CHUNK):
        chunk = hashes[start:start + HASH_CHUNK]
        marks = ", ".join("?" * len(chunk))
        found.update(row[0] for row in db.execute(
            f"SELECT hash FROM examples WHERE hash IN ({marks})", chunk))
    return found


@contextlib.contextmanager
def _without_fsync(db: sqlite_utils.Database) -> Iterator[None]:
    """Commit without waiting for the disk while a bulk write runs (outside a transaction).

    In WAL mode ``synchronous = NORMAL`` cannot corrupt the file; a power cut right after the
    commit may lose that write, never half of it.
    """
    if db.conn.in_transaction:  # the caller's transaction decides
        yield
        return
    sync = db.execute("PRAGMA synchronous").fetchone()[0]
    db.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        db.execute(f"PRAGMA synchronous = {int(sync)}")


@contextlib.contextmanager
def _bulk_settings(db: sqlite_utils.Database) -> Iterator[None]:
    """Trade per-commit fsync for speed and give SQLite a large cache while a bulk write runs."""
    cache = db.execute("PRAGMA cache_size").fetchone()[0]
    db.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        with _without_fsync(db):
            yield
    finally:
        db.execute(f"PRAGMA cache_size = {int(cache)}")


_collector = threading.Lock()
_pauses = [0, False]  # imports running now; whether the collector was on before the first


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while any import runs (imports may overlap)."""
    with _collector:
        if _pauses[0] == 0:
            _pauses[1] = gc.isenabled()
            gc.disable()
        _pauses[0] += 1
    try:
        yield
    finally:
        with _collector:
            _pauses[0] -= 1
            if _pauses[0] == 0 and _pauses[1]:
                gc.enable()


def _drop_row_triggers(db: sqlite_utils.Database) -> list[str]:
    """Drop the per-row insert triggers; return their SQL to recreate them."""
    marks = ", ".join("?" * len(ROW_TRIGGERS))
    found = db.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                       f"AND name IN ({marks})", ROW_TRIGGERS).fetchall()
    for name, _ in found:
        db.execute(f"DROP TRIGGER {name}")
    return [sql for _, sql in found]


def _insert_few_payloads(conn: Any, rows: dict[str, tuple[tuple[Any, ...], str | None]],
                         before: int, time: str) -> bool:
    """Insert annotations drawn from a few distinct payloads (labels) in one statement.

    The rows' payload numbers travel as one JSON array that SQLite walks with json_each: a
    third of the cost of binding a million rows one by one. Returns False (nothing written)
    when the payloads are too varied for one CASE expression (spans, answers).
    """
    numbers: dict[str, int] = {}
    order = []
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


class _Import:
    """Write records chunk by chunk inside the caller's transaction.

    Serializing a chunk is Python work; filling the search index and the history for the
    chunk before is one long SQLite statement each, which releases the GIL. A worker thread
    runs those statements while this thread serializes the next chunk, so both cores work.
    The connection is only ever used by one thread at a time: each hand-over waits.
    """

    def __init__(self, db: sqlite_utils.Database, source: str | None, summary: ImportSummary,
                 bulk: bool, keep_repeated_texts: bool = False):
        self.db, self.conn, self.source, self.summary, self.bulk = \
            db, db.conn, source, summary, bulk
        self.keep_repeated_texts = keep_repeated_texts
        self.time = now()
        self.meta_json, self.annotation_json = _Encoder(), _Encoder()
        self.seen: set[str] = set()
        self.pending: Future[None] | None = None
        self.worker = ThreadPoolExecutor(max_workers=1) if bulk else None

    def rows(self, records: Iterable[Any]) -> dict[str, tuple[tuple[Any, ...], str | None]]:
        """Serialize records into INSERT values keyed by content hash; skip repeated texts."""
        rows: dict[str, tuple[tuple[Any, ...], str | None]] = {}
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
            if digest in seen:
                duplicates.append(record.line)
                continue
            seen.add(digest)
            annotation = record.annotation
            rows[digest] = ((serialized, "\n".join(fields.values()), split, source,
                             record.line, digest, meta_json(record.meta or {}),
                             record.source_id),
                            None if annotation is None else annotation_json(annotation))
        return rows

    def run(self, chunks: Iterable[list[Any]]) -> None:
        conn = self.conn
        empty = conn.execute("SELECT 1 FROM examples LIMIT 1").fetchone() is None
        triggers = _drop_row_triggers(self.db) if self.bulk else []
        # Rebuilding the hash index in one sorted pass beats a million random inserts into
        # it; only a new project can do without it meanwhile (no existing texts to look up).
        hash_index = None
        if self.bulk and empty:
            hash_index = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' "
                                      "AND name = 'examples_hash'").fetchone()
            if hash_index:
                conn.execute("DROP INDEX examples_hash")
        try:
            for chunk in chunks:
                rows = self.rows(chunk)
                if not empty:
                    for digest in _existing_hashes(self.db, list(rows)):
                        self.summary.duplicate_lines.append(rows.pop(digest)[0][4])
                self.wait()
                if rows:
                    self.write(rows)
            self.wait()
        finally:
            if self.pending is not None:  # an error: let the worker finish before rollback
                wait([self.pending])
            if self.worker is not None:
                self.worker.shutdown()
        if hash_index:
            conn.execute(hash_index[0])
        if self.bulk:
            conn.execute("UPDATE counters SET n = n + ? WHERE name = 'examples'",
                         [self.summary.added])
            conn.execute("UPDATE counters SET n = n + ? WHERE name = 'accepted'",
                         [self.summary.annotated])
            for sql in triggers:
                conn.execute(sql)

    def wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def write(self, rows: dict[str, tuple[tuple[Any, ...], str | None]]) -> None:
        """Insert one chunk's examples and annotations; index and history follow."""
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
            if self.worker is None:
                self.follow(before)
            else:
                self.pending = self.worker.submit(self.follow, before)
            return
        # The id space ran out (ids near 2**63) and SQLite picked free ones: ask for them.
        found = dict(conn.execute("SELECT hash, id FROM examples"))  # one scan, rare case
        pairs = [(found[digest], payload) for digest, (_, payload) in rows.items()]
        conn.executemany(INSERT_ANNOTATION, ((example_id, payload, time)
                                            for example_id, payload in pairs
                                            if payload is not None))
        conn.executemany(HISTORY_FROM_IMPORT + "WHERE example_id = ?",
                         ((example_id,) for example_id, payload in pairs
                          if payload is not None))
        if self.bulk:
            conn.executemany(FTS_FROM_EXAMPLES + "WHERE id = ?",
                             ((example_id,) for example_id, _ in pairs))

    def follow(self, before: int) -> None:
        """Copy the new annotations into the history and (bulk) the texts into the index."""
        self.conn.execute(HISTORY_FROM_IMPORT + "WHERE example_id > ?", [before])
        if self.bulk:
            self.conn.execute(FTS_FROM_EXAMPLES + "WHERE id > ?", [before])


def _chunks(first: list[Any], rest: Iterator[Any]) -> Iterator[list[Any]]:
    if first:
        yield first
    while chunk := list(itertools.islice(rest, CHUNK)):
        yield chunk


def insert_examples(db: sqlite_utils.Database, records: Iterable[Any], source: str | None,
                    keep_repeated_texts: bool = False) -> ImportSummary:
    """Insert ImportRecords and their annotations in one transaction; return the counts.

    ``records`` may be a generator: it is read chunk by chunk while the chunks before are
    written, and an exception it raises rolls the whole import back.
    """
    summary = ImportSummary()
    with _collector_paused():
        rest = iter(records)
        first = list(itertools.islice(rest, CHUNK))
        bulk = len(first) >= BULK_FROM
        settings = _bulk_settings(db) if bulk and not db.conn.in_transaction \
            else contextlib.nullcontext()
        with settings, db.atomic():
            _Import(db, source, summary, bulk, keep_repeated_texts).run(_chunks(first, rest))
    summary.duplicate_lines.sort()
    summary.duplicates = len(summary.duplicate_lines)
    return summary


# -- predictions ---------------------------------------------------------------------------------
# An upsert, not INSERT OR REPLACE: with foreign keys on, REPLACE costs ten times as much
# (20 us a row), and every millisecond the write lock is held is one a label save from the
# desktop waits for.
INSERT_PREDICTION = """
INSERT INTO predictions (example_id, source, payload, score, created_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (example_id, source) DO UPDATE SET payload = excluded.payload,
    score = excluded.score, created_at = excluded.created_at
"""
SET_LATEST_SCORE = "UPDATE examples SET latest_score = ? WHERE id = ?"
# Exactly what records.dumps writes; one encoder object instead of one per json.dumps call.
_encode_payload = json.JSONEncoder(ensure_ascii=False, sort_keys=True,
                                   separators=(",", ":")).encode


def fields_page(db: sqlite_utils.Database, after_id: int | None, limit: int,
                unlabeled: bool = True) -> tuple[list[int], list[dict[str, str]]]:
    """Return the ids and task fields of the next ``limit`` examples after ``after_id``.

    Examples come in id order; ``unlabeled`` keeps only those without an annotation.
    """
    where = f"{UNLABELED} AND e.id > ?" if unlabeled else "e.id > ?"
    rows = db.conn.execute(f"SELECT e.id, e.fields FROM examples e WHERE {where} "
                           "ORDER BY e.id LIMIT ?",
                           [-2**63 if after_id is None else after_id, int(limit)]).fetchall()
    loads = json.loads
    return [row[0] for row in rows], [loads(row[1]) for row in rows]


def save_predictions(db: sqlite_utils.Database, source: str | int, example_ids: list[int],
                     payloads: list[dict[str, Any]], scores: list[float | None]) -> int:
    """Store one page of predictions of one source in one transaction; return how many.

    What ``Project.save_predictions`` writes too: each (example, source) keeps only
    its newest prediction, and the example's ``latest_score`` follows it. Everything is
    serialized before the transaction starts and the commit does not wait for the disk
    (predictions can be made again), so the write lock is held for a few milliseconds, which
    is what a label saved meanwhile from the desktop waits (records.write_transaction). The
    score update does not touch the search index (migration 4).
    """
    source, time = str(source), now()
    scores = [None if score is None else float(score) for score in scores]
    rows = [(example_id, source, _encode_payload(payload), score, time)
            for example_id, payload, score in zip(example_ids, payloads, scores, strict=True)]
    conn = db.conn
    try:
        with _without_fsync(db), db.atomic():
            conn.executemany(INSERT_PREDICTION, rows)
            conn.executemany(SET_LATEST_SCORE, zip(scores, example_ids, strict=True))
    except sqlite3.IntegrityError as error:  # foreign key: an example that does not exist
        known = {row[0] for row in db.conn.execute(
            "SELECT id FROM examples WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(example_ids)])}
        missing = next((i for i in example_ids if i not in known), example_ids[0])
        raise AnnotuneError(f"cannot store a prediction for example {missing}: {error}",
                            hint="predict only examples of this project") from None
    return len(rows)
