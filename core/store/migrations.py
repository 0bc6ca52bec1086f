"""Numbered schema migrations: the only way the project file's schema ever changes.

``MIGRATIONS[i]`` brings a file from version ``i`` to ``i + 1``; the versions applied are
recorded in the ``migrations`` table. Append new migrations, never edit a released one: files
written by older annotune versions are upgraded by replaying the missing steps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

from annotune.core.errors import AnnotuneError
from annotune.core.store.records import write_transaction

SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS project (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY,
    fields TEXT NOT NULL,
    text TEXT NOT NULL,
    split TEXT,
    source TEXT,
    line INTEGER,
    hash TEXT NOT NULL UNIQUE,
    meta TEXT NOT NULL DEFAULT '{}',
    source_id TEXT,
    latest_score REAL
);
CREATE INDEX IF NOT EXISTS examples_split ON examples (split, id);
CREATE INDEX IF NOT EXISTS examples_latest_score ON examples (latest_score, id);
CREATE TABLE IF NOT EXISTS annotations (
    example_id INTEGER PRIMARY KEY REFERENCES examples (id) ON DELETE CASCADE,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'skipped')),
    annotator TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_status ON annotations (status, example_id);
CREATE TABLE IF NOT EXISTS annotation_history (
    id INTEGER PRIMARY KEY,
    example_id INTEGER NOT NULL REFERENCES examples (id) ON DELETE CASCADE,
    action TEXT NOT NULL CHECK (action IN ('save', 'skip', 'undo', 'redo', 'import')),
    old_payload TEXT,
    old_status TEXT,
    old_annotator TEXT,
    new_payload TEXT,
    new_status TEXT,
    annotator TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- undo stack state of a save/skip entry: 'done', 'undone' (redo tail) or 'dropped'
    -- (a new change after undo); NULL for audit-only rows (undo, redo, import).
    state TEXT CHECK (state IN ('done', 'undone', 'dropped')),
    target INTEGER REFERENCES annotation_history (id)
);
CREATE INDEX IF NOT EXISTS history_state ON annotation_history (state, id);
CREATE INDEX IF NOT EXISTS history_example ON annotation_history (example_id, id);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'cancelled')),
    config TEXT NOT NULL,
    device TEXT NOT NULL,
    duration_s REAL,
    metrics TEXT,
    artifact_dir TEXT,
    error TEXT,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS run_epochs (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS predictions (
    example_id INTEGER NOT NULL REFERENCES examples (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    payload TEXT NOT NULL,
    score REAL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (example_id, source)
);
CREATE INDEX IF NOT EXISTS predictions_latest ON predictions (example_id, created_at);
"""


def _v1_initial(db: sqlite_utils.Database) -> None:
    """Create the first schema: settings, examples (+ FTS5), annotations, history, runs."""
    db.executescript(SCHEMA_1)
    if db.table("examples").detect_fts() is None:
        db.table("examples").enable_fts(["text"], fts_version="FTS5", create_triggers=True)


# Counts of the common filters (all, accepted, skipped; unlabeled is the difference) kept in a
# one-row-per-name table: COUNT(*) over a million examples costs 15-20 ms, a lookup here
# ~0.01 ms. Triggers keep them in the same transaction as every write, whatever writes;
# core.store.bulk swaps the per-row triggers out for one UPDATE during a large import.
COUNTER_TRIGGERS = {
    "counters_example_added": """CREATE TRIGGER counters_example_added AFTER INSERT ON examples
BEGIN UPDATE counters SET n = n + 1 WHERE name = 'examples'; END""",
    "counters_example_removed": """CREATE TRIGGER counters_example_removed AFTER DELETE ON examples
BEGIN UPDATE counters SET n = n - 1 WHERE name = 'examples'; END""",
    "counters_annotation_added": """CREATE TRIGGER counters_annotation_added
AFTER INSERT ON annotations
BEGIN UPDATE counters SET n = n + 1 WHERE name = NEW.status; END""",
    "counters_annotation_removed": """CREATE TRIGGER counters_annotation_removed
AFTER DELETE ON annotations
BEGIN UPDATE counters SET n = n - 1 WHERE name = OLD.status; END""",
    "counters_annotation_changed": """CREATE TRIGGER counters_annotation_changed
AFTER UPDATE OF status ON annotations WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE counters SET n = n - 1 WHERE name = OLD.status;
    UPDATE counters SET n = n + 1 WHERE name = NEW.status;
END""",
}


def _v2_counters(db: sqlite_utils.Database) -> None:
    """Keep the counts of examples, accepted and skipped annotations in table ``counters``."""
    db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL) "
               "WITHOUT ROWID")
    db.execute("INSERT INTO counters (name, n) SELECT 'examples', COUNT(*) FROM examples")
    for status in ("accepted", "skipped"):
        db.execute("INSERT INTO counters (name, n) "
                   "SELECT ?, COUNT(*) FROM annotations WHERE status = ?", [status, status])
    for sql in COUNTER_TRIGGERS.values():
        db.execute(sql)


def _v3_hash_index(db: sqlite_utils.Database) -> None:
    """Move the content-hash uniqueness of examples from the column to a named index.

    A column's UNIQUE index can never be dropped; a named one can, so a large import drops it,
    appends rows and rebuilds it in one sorted pass (random inserts into a million-entry index
    cost twice as much). The table is rebuilt the way SQLite documents for schema changes:
    copy, drop, rename, with foreign keys off (``migrate`` does that) and every trigger of the
    old table recreated. Ids are kept, so the FTS index and every reference stay valid.
    """
    table_sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' "
                           "AND name = 'examples'").fetchone()[0]
    if "hash TEXT NOT NULL UNIQUE" not in table_sql:
        raise AnnotuneError("unexpected schema of table examples", hint="restore a backup")
    triggers = [row[0] for row in db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'examples'")]
    new_sql = table_sql.replace("hash TEXT NOT NULL UNIQUE", "hash TEXT NOT NULL")
    db.execute(new_sql.replace("examples", "examples_new", 1))
    db.execute("INSERT INTO examples_new SELECT * FROM examples")
    db.execute("DROP TABLE examples")
    db.execute("ALTER TABLE examples_new RENAME TO examples")
    db.execute("CREATE UNIQUE INDEX examples_hash ON examples (hash)")
    db.execute("CREATE INDEX examples_split ON examples (split, id)")
    db.execute("CREATE INDEX examples_latest_score ON examples (latest_score, id)")
    for sql in triggers:
        db.execute(sql)


def _v4_search_index_follows_text(db: sqlite_utils.Database) -> None:
    """Re-index an example in the search index only when its text changes.

    sqlite-utils' FTS update trigger fires on an update of any column: storing a prediction's
    score (``latest_score``) or a split deleted and re-inserted the example's text, which cost
    ten times the rest of a page of predictions and left delete markers in the index.
    """
    db.execute("DROP TRIGGER IF EXISTS examples_au")
    db.execute("""CREATE TRIGGER "examples_au" AFTER UPDATE OF "text" ON "examples" BEGIN
  INSERT INTO "examples_fts" ("examples_fts", rowid, "text")
    VALUES('delete', old.rowid, old."text");
  INSERT INTO "examples_fts" (rowid, "text") VALUES (new.rowid, new."text");
END""")


def _v5_import_batches(db: sqlite_utils.Database) -> None:
    """Record imports still being written, so that their examples stay out of sight until done.

    A large import publishes its rows in many short transactions (core/store/batches.py); its
    examples are those from ``first_id`` on, and readers keep below the lowest such id.
    ``owner`` names the importing process (host, pid, start time) and ``heartbeat`` the time
    of its last step, so a batch whose importer died is found and removed.
    """
    db.execute("""CREATE TABLE IF NOT EXISTS imports (
    id INTEGER PRIMARY KEY,
    first_id INTEGER NOT NULL,
    source TEXT,
    owner TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat REAL NOT NULL
)""")


# The content hashes' uniqueness lives in its own table, kept by triggers on examples.
HASH_TRIGGERS = {
    "examples_hash_added": """CREATE TRIGGER examples_hash_added AFTER INSERT ON examples
BEGIN INSERT INTO example_hashes (hash, example_id) VALUES (NEW.hash, NEW.id); END""",
    "examples_hash_changed": """CREATE TRIGGER examples_hash_changed
AFTER UPDATE OF hash ON examples WHEN OLD.hash IS NOT NEW.hash
BEGIN
    DELETE FROM example_hashes WHERE hash = OLD.hash AND example_id = OLD.id;
    INSERT INTO example_hashes (hash, example_id) VALUES (NEW.hash, NEW.id);
END""",
    "examples_hash_removed": """CREATE TRIGGER examples_hash_removed AFTER DELETE ON examples
BEGIN DELETE FROM example_hashes WHERE hash = OLD.hash AND example_id = OLD.id; END""",
}


def _v6_hash_table(db: sqlite_utils.Database) -> None:
    """Keep the content hashes' uniqueness in table ``example_hashes`` instead of an index.

    An import published in steps (migration 5) would insert its random hashes into an index
    over the whole table in every step, and each commit rewrites every index page it touched:
    for a million rows, gigabytes written to the log. Its own table lets an import add its
    hashes last, in key order, each page written once. Triggers keep it for every other write,
    and a repeated text still fails with a UNIQUE constraint error.
    """
    db.execute("CREATE TABLE example_hashes (hash TEXT PRIMARY KEY, "
               "example_id INTEGER NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO example_hashes (hash, example_id) "
               "SELECT hash, id FROM examples ORDER BY hash")
    db.execute("DROP INDEX IF EXISTS examples_hash")
    for sql in HASH_TRIGGERS.values():
        db.execute(sql)


def _v7_label_issues(db: sqlite_utils.Database) -> None:
    """Keep label checks and the examples whose given annotation their models disagree with.

    ``label_checks``: one row per check (config JSON: folds and training options; status as
    for runs). ``label_issues``: per check and example, the score (higher: more likely
    wrong), the annotation that was checked, the suggested one and the reasons (JSON), and
    ``kept_at`` once someone reviewed it and kept the given annotation.
    """
    db.execute("""CREATE TABLE label_checks (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'cancelled')),
    config TEXT NOT NULL DEFAULT '{}',
    examples INTEGER NOT NULL DEFAULT 0,
    finished_at TEXT,
    error TEXT
)""")
    db.execute("""CREATE TABLE label_issues (
    check_id INTEGER NOT NULL REFERENCES label_checks (id) ON DELETE CASCADE,
    example_id INTEGER NOT NULL REFERENCES examples (id) ON DELETE CASCADE,
    score REAL NOT NULL,
    given TEXT NOT NULL,
    suggestion TEXT,
    reasons TEXT NOT NULL DEFAULT '[]',
    kept_at TEXT,
    PRIMARY KEY (check_id, example_id)
) WITHOUT ROWID""")
    db.execute("CREATE INDEX label_issues_score ON label_issues (check_id, score DESC)")
    db.execute("CREATE INDEX label_issues_example ON label_issues (example_id)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_initial,
    _v2_counters,
    _v3_hash_index,
    _v4_search_index_follows_text,
    _v5_import_batches,
    _v6_hash_table,
    _v7_label_issues,
]
SCHEMA_VERSION = len(MIGRATIONS)
MIGRATION_WAIT_S = 60.0  # a rebuild waits out another program's import step or save


def current_version(db: sqlite_utils.Database) -> int:
    """Return the schema version recorded in the file (0 for a fresh, empty file)."""
    if "migrations" not in db.table_names():
        return 0
    row = db.execute("SELECT MAX(version) FROM migrations").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database, path: object) -> int:
    """Apply every missing migration, each in its own transaction; return the final version.

    Raises AnnotuneError when the file was written by a newer annotune (its schema version is
    higher than the last migration known here). Each migration holds the write lock from its
    first statement and reads the version again under it, so two programs opening an old file
    at once (or one opening it while another writes) neither fail nor apply a step twice.
    """
    if "migrations" not in db.table_names():  # only a new file: opening must not write
        db.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, "
                   "applied_at TEXT NOT NULL)")
    version = current_version(db)
    if version > SCHEMA_VERSION:
        raise AnnotuneError(
            f"this project uses schema version {version}, but this annotune only knows "
            f"versions up to {SCHEMA_VERSION}", where=str(path),
            hint="upgrade annotune (pip install -U annotune) to open it")
    if version == SCHEMA_VERSION:
        return version
    # Rebuilding a table (migration 3) drops it: with foreign keys on, that would delete every
    # annotation with it. SQLite only honours this pragma outside a transaction.
    keys = db.execute("PRAGMA foreign_keys").fetchone()[0]
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        for number in range(version, SCHEMA_VERSION):
            with write_transaction(db, wait_s=MIGRATION_WAIT_S):
                if current_version(db) > number:  # another program applied it meanwhile
                    continue
                MIGRATIONS[number](db)
                broken = db.execute("PRAGMA foreign_key_check").fetchone()
                if broken:
                    raise AnnotuneError(f"migration {number + 1} broke a reference in table "
                                        f"{broken[0]}", where=str(path),
                                        hint="the file is unchanged; report this problem")
                db.execute("INSERT INTO migrations (version, applied_at) VALUES (?, ?)",
                           [number + 1, datetime.now(UTC).isoformat(timespec="seconds")])
    finally:
        db.execute(f"PRAGMA foreign_keys = {int(keys)}")
    return SCHEMA_VERSION
