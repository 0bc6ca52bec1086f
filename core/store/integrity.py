"""Refuse a damaged project file before anything reads wrong counts from it or writes into it.

``PRAGMA quick_check`` reads every page of the file: 3–8 ms per MiB on a shared 2-core
machine (2.5–5.9 s for a million-example project of 750 MiB, against a few milliseconds for
the rest of opening it). So opening checks the whole file only up to ``WHOLE_CHECK_UP_TO``;
above that it checks the small tables whole (settings, schema versions, counters, runs),
walks the first and last pages of every large table and index, and compares the kept
counters with the examples table, which together cost a few milliseconds. Large imports
check the whole file anyway (``check_whole``, overlapping with reading the first chunks):
they write many pages, and writing into a damaged file spreads the damage. ``annotune
backup`` checks its copy whole.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from annotune.core.store.failures import DamagedProjectError

WHOLE_CHECK_UP_TO = 64 * 2**20  # bytes (file and WAL): 0.2–0.5 s of quick_check
SMALL_TABLES = ("sqlite_master", "project", "migrations", "counters", "imports", "runs",
                "run_epochs")
# First and last entries of each large table and index: reads the pages down both edges.
# (One subquery each: SQLite answers a lone MIN or MAX from the index edge, but scans the
# whole table for MIN and MAX in one SELECT.)
EDGES = tuple(f"SELECT (SELECT MIN({key}) FROM {table}), (SELECT MAX({key}) FROM {table})"
              for table, key in (("examples", "id"), ("example_hashes", "hash"),
                                 ("annotations", "example_id"), ("annotation_history", "id"),
                                 ("predictions", "example_id")))
MAX_PROBLEMS = 5


def _problems(db: sqlite_utils.Database, pragma: str) -> list[str]:
    try:
        return [str(row[0]) for row in db.execute(pragma).fetchall()]
    except sqlite3.DatabaseError as error:
        return [str(error)]


def _raise_for(problems: list[str], where: str | None) -> None:
    # quick_check heads its report with "*** in database main ***" lines: noise to a user
    problems = [line for problem in problems for line in problem.splitlines()
                if line.strip() and not line.startswith("***")] or problems
    if problems and problems != ["ok"]:
        more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
        raise DamagedProjectError("; ".join(problems[:3]) + more, where=where)


def check_whole(db: sqlite_utils.Database, where: str | None = None) -> None:
    """Read every page of the file (quick_check); DamagedProjectError naming what is wrong."""
    _raise_for(_problems(db, f"PRAGMA quick_check({MAX_PROBLEMS})"), where)


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def check_pages(db: sqlite_utils.Database, path: Path) -> None:
    """Check the file's pages on open: whole when small, the cheap variant when large."""
    where = str(path)
    if _file_bytes(path) <= WHOLE_CHECK_UP_TO:
        check_whole(db, where)
        return
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in SMALL_TABLES:
        if table == "sqlite_master" or table in tables:
            _raise_for(_problems(db, f"PRAGMA quick_check({table})"), where)
    for sql in EDGES:
        try:
            db.execute(sql).fetchall()
        except sqlite3.OperationalError as error:
            if "no such" not in str(error):  # an index or table an old schema lacks
                raise DamagedProjectError(str(error), where=where) from None
        except sqlite3.DatabaseError as error:
            raise DamagedProjectError(str(error), where=where) from None


def check_counters(db: sqlite_utils.Database, path: Path) -> None:
    """Compare the kept counters with the examples table (after migrations; no scan)."""
    from annotune.core.store.queries import VISIBLE_LIMIT

    counts = dict(db.execute("SELECT name, n FROM counters").fetchall())
    if set(counts) != {"examples", "accepted", "skipped"}:
        raise DamagedProjectError(f"table counters holds {sorted(counts)} instead of "
                                  "examples, accepted and skipped", where=str(path))
    visible = db.execute(f"SELECT EXISTS (SELECT 1 FROM examples WHERE id <= {VISIBLE_LIMIT})"
                         ).fetchone()[0]
    if bool(visible) != (counts["examples"] > 0) or min(counts.values()) < 0 or \
            counts["accepted"] + counts["skipped"] > counts["examples"]:
        raise DamagedProjectError(
            f"the kept counts (examples {counts['examples']}, accepted {counts['accepted']}, "
            f"skipped {counts['skipped']}) disagree with the examples table", where=str(path))
