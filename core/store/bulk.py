"""Add many examples at once, and store many predictions at once (one transaction per page).

An import is all or nothing, and it never makes other programs wait long for the project:

- Small imports (under ``BULK_FROM`` rows) are serialized first and written in one short
  transaction.
- Large ones are published in steps (core/store/batches.py): records are read and serialized
  outside the write lock; each step then holds the lock for about ``STEP_S`` seconds to insert
  one chunk with its annotations, history and search index, and commits. The batch stays
  invisible to every reader until its last step counts it in, so a label saved meanwhile from
  the desktop waits a fraction of a second instead of the whole import, and a kill at any
  moment leaves nothing visible (the next open or import removes the rows).

A million-row import spends its time in SQLite, so each step does as little per row as it
can (measured on a 2-core machine, see docs/benchmarks.md):

- rows go in with ``executemany`` over prepared INSERTs on the raw connection;
- per-row triggers (the FTS5 index, the counters) are dropped inside each step's transaction,
  the index is filled with one INSERT ... SELECT and the counters with one UPDATE at the end;
  schema changes are transactional, so other connections never see the triggers missing;
- the history rows of imported annotations are copied by one INSERT ... SELECT per step
  (SQLite evaluates the table's CHECK lists once per statement, not once per row);
- the JSON of fields, meta and annotations is written by cached or specialised encoders;
- serializing the next chunks (Python) overlaps with the step that fills the search index and
  history (one long SQLite statement each, which releases the GIL) on a worker thread;
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

import collections
import contextlib
import gc
import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import sqlite_utils

from annotune.core.errors import AnnotuneError
from annotune.core.store import batches, integrity
from annotune.core.store.backup import BackgroundCheckpoints
from annotune.core.store.queries import UNLABELED, VISIBLE
from annotune.core.store.records import (
    ImportSummary,
    begin_immediate,
    now,
    write_transaction,
)
from annotune.core.store.rows import RowMaker, Rows, RowWriter, drop_existing

# Triggers that fire once per inserted example or annotation: swapped out for bulk work.
ROW_TRIGGERS = ("examples_ai", "examples_hash_added", "counters_example_added",
                "counters_annotation_added")
BULK_FROM = 1000  # below this many rows, one short transaction with the triggers in place
BULK_CACHE_KIB = 256 * 1024  # page cache while a large import runs
# One step holds the write lock about this long: a label saved meanwhile waits at most that
# (plus a poll), far under a second even on a busy machine.
STEP_S = 0.15
FIRST_STEP_ROWS, MIN_STEP_ROWS, MAX_STEP_ROWS = 2_000, 500, 50_000
# After each step the lock stays free a moment, so programs polling for it
# (records.begin_immediate polls every 2 ms at most) get their turn: GAP_S while other
# programs have written lately, SHORT_GAP_S after QUIET_STEPS steps in which none did (a
# poll still lands in it; the first write seen brings the long gap back).
GAP_S, SHORT_GAP_S, QUIET_STEPS = 0.02, 0.005, 8
READ_AHEAD = 4  # chunks serialized ahead while the steps before are written
FIRST_HASH_STEP_ROWS = 20_000  # hashes added to example_hashes in the first indexing step
TEMP_CACHE_KIB = 64 * 1024  # the batch's hashes wait in a temporary table of this connection
# Appended in each step (in the order of the ids, no index to keep), sorted once at the end.
STAGE_HASHES = ("INSERT INTO temp.batch_hashes_raw (hash, example_id) "
                "SELECT hash, id FROM examples WHERE id > ?")
IMPORT_WAIT_S = 60.0  # an import step waits this long for other writers before giving up
# Near the top of the id space SQLite picks free ids at random, and a batch's examples are
# no longer one range above the project's: such projects import in one transaction.
IDS_LEFT_FOR_STEPS = 2**62


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


def _import_at_once(db: sqlite_utils.Database, records: Iterable[Any], maker: RowMaker,
                    summary: ImportSummary, where: str | None) -> None:
    """Serialize every record, then write them in one transaction (per-row triggers on)."""
    rows = maker.rows(records)
    if not db.conn.in_transaction:  # removing a killed import's rows takes transactions
        batches.clean_up(db)
    writer = RowWriter(db, summary, now(), index_search=False)
    with write_transaction(db, IMPORT_WAIT_S):
        batches.check_none_running(db, where)
        if db.execute("SELECT 1 FROM examples LIMIT 1").fetchone() is not None:
            drop_existing(db, rows, summary)
        if rows:
            before = writer.insert(rows)
            if before is not None:
                writer.follow(before)


class _Steps:
    """Publish a large import in short write transactions, one chunk each (see module doc).

    The main thread serializes chunks (Python) and inserts each chunk's examples and
    annotations; a worker thread then fills the chunk's history and search index (long SQL
    statements that release the GIL), puts the triggers back and commits, while the main
    thread serializes the chunks after. The connection is used by one thread at a time: a
    step starts only when the worker has committed the one before.

    The chunks' content hashes wait in a temporary table (sorted, on this connection only);
    when every row is in, further steps add them to ``example_hashes`` one key range at a
    time, so each page of that table is written once, and the last of them makes the batch
    part of the project. Random inserts in every step would rewrite the whole table each time.
    """

    def __init__(self, db: sqlite_utils.Database, source: str | None, summary: ImportSummary,
                 maker: RowMaker, where: str | None, committed: Callable[[], None]):
        self.db, self.conn, self.source, self.summary = db, db.conn, source, summary
        self.maker, self.where, self.committed = maker, where, committed
        self.writer = RowWriter(db, summary, now(), index_search=True)
        self.worker = ThreadPoolExecutor(max_workers=1)
        self.pending: Future[None] | None = None
        self.batch: batches.Batch | None = None
        self.step_rows = FIRST_STEP_ROWS
        self.committed_at = 0.0
        self.data_version, self.quiet_steps = None, 0  # others' writes seen between steps
        self.holds: list[float] = []  # seconds each step held the write lock

    def run(self, records: Iterator[Any]) -> None:
        conn = self.conn
        for table in ("batch_hashes", "batch_hashes_raw"):  # a failed import's, if any
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        conn.execute("CREATE TEMP TABLE batch_hashes_raw (hash TEXT NOT NULL, "
                     "example_id INTEGER NOT NULL)")
        # only now does the temporary database exist to take its settings
        temp_cache = conn.execute("PRAGMA temp.cache_size").fetchone()[0]
        conn.execute(f"PRAGMA temp.cache_size = -{TEMP_CACHE_KIB}")
        temp_journal = conn.execute("PRAGMA temp.journal_mode").fetchone()[0]
        conn.execute("PRAGMA temp.journal_mode = MEMORY")  # its undo log needs no disk
        try:
            # The whole file is checked while the first chunks are read: an import writes
            # many pages, and writing into a damaged file spreads the damage.
            self.pending = self.worker.submit(integrity.check_whole, self.db, self.where)
            ready: collections.deque[Rows] = collections.deque()
            while chunk := list(itertools.islice(records, self.step_rows)):
                ready.append(self.maker.rows(chunk))
                while ready and (len(ready) > READ_AHEAD or self._idle()):
                    self._wait()
                    self._step(ready.popleft())
            while ready:
                self._wait()
                self._step(ready.popleft())
            self._wait()
            self._index_hashes()
        except BaseException:
            self._abort()
            raise
        finally:
            self.worker.shutdown()
            if not conn.in_transaction:
                for table in ("batch_hashes", "batch_hashes_raw"):
                    conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
                conn.execute(f"PRAGMA temp.cache_size = {int(temp_cache)}")
                conn.execute(f"PRAGMA temp.journal_mode = {temp_journal}")
        self.summary.steps = len(self.holds)
        self.summary.longest_step_s = round(max(self.holds, default=0.0), 3)

    def _idle(self) -> bool:
        return self.pending is None or self.pending.done()

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def _begin(self) -> float:
        """Leave the lock to others for a moment, then take it; return when it was taken."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        others = version != self.data_version  # changes only with other connections' commits
        self.quiet_steps = 0 if others else self.quiet_steps + 1
        wanted = SHORT_GAP_S if self.quiet_steps >= QUIET_STEPS else GAP_S
        gap = wanted - (time.perf_counter() - self.committed_at)
        if gap > 0:
            time.sleep(gap)
        begin_immediate(self.db, IMPORT_WAIT_S)
        return time.perf_counter()

    def _held(self, started: float, count: int, rows_now: int) -> int:
        """Note a committed step; return the rows for the next one, aimed at STEP_S."""
        self.committed()
        self.committed_at = time.perf_counter()
        self.data_version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        held = self.committed_at - started
        self.holds.append(held)
        target = count * STEP_S / max(held, 1e-3)
        return int(min(MAX_STEP_ROWS, max(MIN_STEP_ROWS, (rows_now + target) / 2)))

    def _step(self, rows: Rows) -> None:
        """Take the write lock and insert one chunk; the worker completes and commits it."""
        if not rows:
            return
        started = self._begin()
        try:
            if self.batch is None:
                self.batch = batches.begin(self.db, self.source, self.where)
            else:
                batches.touch(self.db, self.batch)
            triggers = batches.drop_triggers(self.db, ROW_TRIGGERS)
            if self.batch.first_id > 1:  # the project had examples: look the texts up
                drop_existing(self.db, rows, self.summary)
            before = self.writer.insert(rows) if rows else None
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.pending = self.worker.submit(self._complete, before, triggers, started, len(rows))

    def _complete(self, before: int | None, triggers: list[str], started: float,
                  count: int) -> None:
        """Fill the chunk's history and index, restore the triggers and commit (worker)."""
        conn = self.conn
        try:
            if before is not None:
                self.writer.follow(before)
                conn.execute(STAGE_HASHES, [before])
            for sql in triggers:
                conn.execute(sql)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.step_rows = self._held(started, count, self.step_rows)

    def _index_hashes(self) -> None:
        """Add the batch's hashes to example_hashes a key range per step; the last one also
        makes the batch part of the project (batches.finish)."""
        if self.batch is None:  # every row was a duplicate within the file
            return
        conn = self.conn
        # Sorted once, outside the write lock (only this connection's temporary tables are
        # written): the rowids of batch_hashes follow the keys.
        conn.execute("CREATE TEMP TABLE batch_hashes AS SELECT hash, example_id "
                     "FROM batch_hashes_raw ORDER BY hash")
        conn.execute("DROP TABLE temp.batch_hashes_raw")
        total = conn.execute("SELECT COUNT(*) FROM temp.batch_hashes").fetchone()[0]
        first, rows = 1, FIRST_HASH_STEP_ROWS
        while True:
            last = first + rows - 1
            started = self._begin()
            try:
                batches.touch(self.db, self.batch)
                conn.execute("INSERT INTO example_hashes (hash, example_id) SELECT hash, "
                             "example_id FROM temp.batch_hashes WHERE rowid BETWEEN ? AND ?",
                             [first, last])
                if last >= total:
                    batches.finish(self.db, self.batch, self.summary.added,
                                   self.summary.annotated)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            rows = self._held(started, min(rows, total - first + 1), rows)
            if last >= total:
                self.batch = None
                return
            first = last + 1

    def _abort(self) -> None:
        """Undo a failed import: roll back the open step, remove the steps committed before."""
        if self.pending is not None:
            wait([self.pending])
            self.pending = None
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        if self.batch is None:
            return
        batches.release(self.batch)  # abandoned from now on, whatever happens next
        with contextlib.suppress(AnnotuneError, sqlite3.Error):
            batches.remove(self.db, self.batch.id)  # else the next open removes it


def insert_examples(db: sqlite_utils.Database, records: Iterable[Any], source: str | None,
                    keep_repeated_texts: bool = False, where: str | None = None
                    ) -> ImportSummary:
    """Insert ImportRecords and their annotations, all or nothing; return the counts.

    ``records`` may be a generator: it is read chunk by chunk while the chunks before are
    written, and an exception it raises undoes the whole import. ``where`` (the project's
    path) goes into error messages.
    """
    summary = ImportSummary()
    maker = RowMaker(source, summary, keep_repeated_texts)
    with _collector_paused():
        rest = iter(records)
        first = list(itertools.islice(rest, BULK_FROM))
        top = db.execute("SELECT COALESCE(MAX(id), 0) FROM examples").fetchone()[0]
        if len(first) < BULK_FROM or db.conn.in_transaction or top > IDS_LEFT_FOR_STEPS:
            _import_at_once(db, itertools.chain(first, rest), maker, summary, where)
        else:
            batches.clean_up(db)  # what a killed import left behind
            with _bulk_settings(db), BackgroundCheckpoints(db) as checkpoints:
                _Steps(db, source, summary, maker, where, checkpoints.nudge).run(
                    itertools.chain(first, rest))
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
    where = f"{VISIBLE} AND e.id > ?"
    if unlabeled:
        where = f"{UNLABELED} AND {where}"
    rows = db.conn.execute(f"SELECT e.id, e.fields FROM examples e WHERE {where} "
                           "ORDER BY e.id LIMIT ?",
                           [-2**63 if after_id is None else after_id, int(limit)]).fetchall()
    try:
        return [row[0] for row in rows], [json.loads(row[1]) for row in rows]
    except ValueError:
        from annotune.core.store.records import example_from_row

        for example_id, fields in rows:  # name the example whose fields are not JSON
            example_from_row({"id": example_id, "fields": fields, "meta": None, "split": None,
                              "source": None, "line": None, "source_id": None})
        raise


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
    source, time_ = str(source), now()
    scores = [None if score is None else float(score) for score in scores]
    rows = [(example_id, source, _encode_payload(payload), score, time_)
            for example_id, payload, score in zip(example_ids, payloads, scores, strict=True)]
    conn = db.conn
    try:
        with _without_fsync(db), write_transaction(db):
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
