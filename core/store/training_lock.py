"""The training lock: an OS file lock that a training holds on its project for its whole life.

The kernel releases the lock when the holding process ends, however it ends (kill -9, a crash,
a power cut), so a run recorded as "running" while nobody holds the lock belongs to a process
that is gone. The same lock keeps a second training of the project from starting. The holder
writes who it is (process, host, run) into the file, for the message of whoever it turns away.

The lock is ``flock`` on POSIX and ``msvcrt.locking`` on Windows, on a file of its own beside
the runs (never the project file: SQLite's own locks on it would be dropped by closing a second
descriptor). Readers check it with a lock of their own held for microseconds; a training that
meets such a check waits for it instead of refusing to start.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

LOCK_NAME = "training.lock"
# Windows locks byte ranges and refuses reads inside them: lock one byte far past the holder's
# description, so others can still read it.
_WINDOWS_LOCK_OFFSET = 1 << 20
# A reader's check holds the lock for microseconds; a training start retries this long
# before it concludes that another training holds it.
ACQUIRE_WAIT_S = 1.0

# Locks this process holds, by path: with locks that some file systems grant per process
# (NFS emulates flock with POSIX locks), a check from the holding process itself would
# otherwise succeed and call its own run abandoned.
_held_here: set[str] = set()
_held_fds: set[int] = set()
_held_guard = threading.Lock()


def _forget_in_forked_child() -> None:
    """Close the lock descriptors a fork copied: the lock must end with its holder alone.

    A forked process (multiprocessing's "fork" workers) shares the holder's open file and
    so its lock; closing its copy (never unlocking, which would free the holder's lock too)
    lets the lock go when the holder dies, even if such a process lives on.
    """
    for fd in list(_held_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _held_fds.clear()
    _held_here.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_forked_child)


def _key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def _try_lock(fd: int, shared: bool) -> bool:
    """Take the lock on ``fd`` without waiting; False when another holder has it."""
    if sys.platform == "win32":
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)


class TrainingLock:
    """Hold a project's training lock: ``acquire`` it, ``describe`` the holder, ``release`` it."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._fd: int | None = None
        self._owner: int | None = None  # the process that took it

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = ACQUIRE_WAIT_S) -> bool:
        """Take the lock, retrying for ``wait`` seconds; False when another training holds it."""
        if self._fd is not None:
            return True
        with _held_guard:
            if _key(self.path) in _held_here:
                return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # os.open descriptors are not inherited by child processes (PEP 446): a process
        # this one starts can never keep the lock alive after it ends
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        deadline = time.monotonic() + wait
        while not _try_lock(fd, shared=False):
            if time.monotonic() >= deadline:
                os.close(fd)
                return False
            time.sleep(0.02)
        self._fd, self._owner = fd, os.getpid()
        with _held_guard:
            _held_here.add(_key(self.path))
            _held_fds.add(fd)
        return True

    def describe(self, **details: Any) -> None:
        """Write who holds the lock (this process, this host, and ``details``) into its file."""
        if self._fd is None:
            raise RuntimeError("describe() needs the lock")
        record = {"pid": os.getpid(), "host": socket.gethostname(), **details}
        data = json.dumps(record, default=str).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)

    def release(self) -> None:
        """Let the lock go (the kernel does the same when the process ends)."""
        fd, self._fd = self._fd, None
        if fd is None or self._owner != os.getpid():  # a forked copy: its fd is closed already
            return
        with _held_guard:
            _held_here.discard(_key(self.path))
            _held_fds.discard(fd)
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> TrainingLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_free(path: str | os.PathLike[str]) -> bool:
    """Tell whether no training holds the lock at ``path`` (True when the file does not exist).

    The check takes the lock for an instant (shared on POSIX, so checks never delay each
    other). A file that cannot be opened counts as held: when in doubt, a run stays "running".
    """
    path = Path(path)
    with _held_guard:
        if _key(path) in _held_here:
            return False
    try:
        fd = os.open(path, (os.O_RDWR if os.name == "nt" else os.O_RDONLY)
                     | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return True  # no training has ever locked this project (lock files are never deleted)
    except OSError:
        return False
    try:
        if not _try_lock(fd, shared=True):
            return False
        _unlock(fd)
        return True
    finally:
        os.close(fd)


def holder(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return what the holder wrote about itself (pid, host, run_id...); {} when unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        record = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
