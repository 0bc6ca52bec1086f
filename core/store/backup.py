"""Keep the project file whole on disk (checkpoints) and copy it safely while it is in use.

In WAL mode a save goes to the ``-wal`` file beside the project; SQLite folds it into the
project file only every 1,000 pages (16 MiB). Until then a copy of the project file alone
lacks the newest labels, so annotune checkpoints on close and when the desktop has been idle
(``checkpoint``), and ``annotune backup`` / File ▸ Save a copy… copy through SQLite's backup
API (``copy_project``), which reads the file and its log as one consistent snapshot while
other programs keep writing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from annotune.core.errors import AnnotuneError
from annotune.core.store import batches, integrity
from annotune.core.store.records import BUSY_TIMEOUT_MS


@dataclass(frozen=True)
class BackupReport:
    """What a backup wrote: the copy's path, its size and counts, and how long it took."""

    path: Path
    bytes: int
    examples: int
    accepted: int
    skipped: int
    seconds: float

    def __str__(self) -> str:
        return (f"copied {self.examples:,} examples ({self.accepted:,} labeled, {self.skipped:,} "
                f"skipped) to {self.path} ({self.bytes / 2**20:.1f} MiB in "
                f"{self.seconds:.1f} s)")


def checkpoint(db: sqlite_utils.Database) -> bool:
    """Copy the log into the project file and empty it when no one reads it; True when whole.

    A PASSIVE checkpoint copies what it can without waiting for anyone (it takes no write
    lock); only when everything was copied does TRUNCATE, with no busy wait, reset the log to
    zero bytes. Inside an open transaction nothing happens.
    """
    conn = db.conn
    if conn.in_transaction:
        return False
    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    whole = busy == 0 and frames == copied
    if whole and frames > 0:
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError:
            pass  # another program took the lock meanwhile: the PASSIVE copy stands
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return whole


class BackgroundCheckpoints:
    """Fold the log into the file on a thread and connection of their own while a bulk write runs.

    SQLite checkpoints in the connection that commits, inside its COMMIT, and each checkpoint
    waits for the disk twice: an import committing a step every 0.15 s spent most of its
    time there. Here the importing connection stops checkpointing (``wal_autocheckpoint =
    0``) and ``nudge()`` after each commit has this thread copy what is new (PASSIVE: it
    takes no write lock, so neither the import nor other programs wait for it). The log
    stays small, so a label saved meanwhile by another program rarely finds a checkpoint to
    do in its own commit.
    """

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.path = next(row[2] for row in db.execute("PRAGMA database_list")
                         if row[1] == "main")
        self.before = db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        self.wake, self.stopping = threading.Event(), False
        self.thread = threading.Thread(target=self._run, name="annotune-checkpoints",
                                       daemon=True)

    def __enter__(self) -> BackgroundCheckpoints:
        if self.path:  # not for a file-less database
            self.db.execute("PRAGMA wal_autocheckpoint = 0")
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.stopping = True
            self.wake.set()
            self.thread.join()
        self.db.execute(f"PRAGMA wal_autocheckpoint = {int(self.before)}")

    def nudge(self) -> None:
        """Say a transaction was committed: there is something to copy."""
        self.wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, check_same_thread=False)
        try:
            while not self.stopping:
                self.wake.wait()
                self.wake.clear()
                with contextlib.suppress(sqlite3.Error):  # the next nudge tries again
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()


def _check_destination(source: Path, destination: Path, force: bool) -> None:
    where = str(destination)
    if not destination.parent.is_dir():
        raise AnnotuneError(f"the folder {destination.parent} does not exist", where=where,
                            hint="create the folder first, or choose another one")
    if destination.exists() and destination.samefile(source):
        raise AnnotuneError("the copy would replace the project itself", where=where,
                            hint="choose another name for the copy")
    for own in (Path(f"{source}-wal"), Path(f"{source}-shm"), Path(f"{source}-journal")):
        # the project's log holds its newest labels while a program has it open
        if destination.resolve() == own.resolve() or (
                destination.exists() and own.exists() and destination.samefile(own)):
            raise AnnotuneError(f"the copy would replace the project's own {own.name} file",
                                where=where, hint="choose another name for the copy")
    if destination.exists() and not force:
        raise AnnotuneError("a file already exists here", where=where,
                            hint="choose another name, or pass --force to replace it")
    for side in (Path(f"{destination}-wal"), Path(f"{destination}-shm")):
        if side.exists():
            raise AnnotuneError(f"{side.name} exists beside it: the file there may be open in "
                                "another program", where=where,
                                hint="close it there first, or choose another name")


def _publish(temp: Path, destination: Path, force: bool) -> None:
    """Give the finished copy its name: replace only when asked, never a half-written file."""
    if force:
        os.replace(temp, destination)
    else:
        try:
            os.link(temp, destination)  # fails if the name was taken meanwhile
        except FileExistsError:
            raise AnnotuneError("a file already exists here", where=str(destination),
                                hint="choose another name, or pass --force to replace it"
                                ) from None
        except OSError:  # a file system without hard links
            if destination.exists():
                raise AnnotuneError("a file already exists here", where=str(destination),
                                    hint="choose another name, or pass --force to replace it"
                                    ) from None
            os.replace(temp, destination)
        temp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # make the new name itself survive a power cut
        folder = os.open(destination.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def copy_project(db: sqlite_utils.Database, source: Path, destination: Path,
                 force: bool = False) -> BackupReport:
    """Copy an open project to ``destination`` through SQLite's backup API; return a report.

    The copy is one consistent snapshot with every committed label, also those still in the
    source's log, taken while other programs keep writing (a read transaction blocks no one
    in WAL mode). It is written under a temporary name, stripped of any import still being
    published (that import is not part of the project yet), checked page by page and only
    then renamed: ``destination`` is never left half-written, and an existing file is replaced
    only with ``force``.
    """
    started = time.perf_counter()
    destination = Path(destination)
    _check_destination(source, destination, force)
    temp = destination.with_name(f".{destination.name}.{os.getpid()}.copying")
    try:
        target = sqlite_utils.Database(sqlite3.connect(str(temp)))
        try:
            # pages=-1: the whole file in one step, from one snapshot; copying in slices would
            # start over each time another program commits.
            db.conn.backup(target.conn, pages=-1)
            for row in batches.unfinished(target):  # in the copy, no import will finish
                batches.remove(target, row["id"])
            integrity.check_whole(target, str(destination))
            counts = dict(target.execute("SELECT name, n FROM counters").fetchall())
            target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            target.close()
        with temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        size = temp.stat().st_size
        _publish(temp, destination, force)
    finally:
        for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm"),
                         Path(f"{temp}-journal")):
            leftover.unlink(missing_ok=True)
    return BackupReport(path=destination, bytes=size, examples=counts.get("examples", 0),
                        accepted=counts.get("accepted", 0), skipped=counts.get("skipped", 0),
                        seconds=time.perf_counter() - started)
