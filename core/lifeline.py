"""Child processes that end with their parent: the parent's side starts them, the child watches.

annotune's long work (training, export) runs in a child process in a session of its own, so a
Ctrl-C in a terminal or a crash of the window never reaches it by accident. Nothing would stop
it either when the program that started it dies, so the parent leaves it a lifeline:

- the child's stdin is a pipe whose only write end the parent holds; the kernel closes it when
  the parent ends, however it ends (kill -9 included), and a thread of the child wakes on the
  end of file at once (on every platform);
- the same thread polls ``getppid()`` (POSIX): a pipe end leaked into some other process
  cannot keep the child alive, because the child is handed to another parent when its own
  dies;
- on Linux the kernel can also kill the child when its parent dies (``PR_SET_PDEATHSIG``),
  which needs no Python thread at all: the child arms it while it has nothing to record
  (start-up, imports) and disarms it when it has something to record on the way out.

A child started without the lifeline (by hand, from a shell) watches nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

PARENT_ENV = "ANNOTUNE_PARENT_PID"
POLL_S = 0.1  # how often the watch thread asks who its parent is


def child_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return Popen arguments for a child with a lifeline, in a process group of its own.

    Keep ``process.stdin`` open for as long as the child should live: closing it (or ending)
    tells the child that its parent is gone. On Linux the kernel kills a child in its
    start-up when the thread that started it ends, so start it from a thread that outlives it.
    """
    options: dict[str, Any] = {"stdin": subprocess.PIPE,
                               "env": {**os.environ, **(env or {}), PARENT_ENV: str(os.getpid())}}
    if sys.platform == "win32":
        options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        options["start_new_session"] = True
    return options


def die_with_parent(enabled: bool = True) -> bool:
    """Ask the Linux kernel to SIGKILL this process when its parent dies (or stop asking).

    Return whether the kernel took the request (False elsewhere than on Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL) if enabled else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class ParentWatch:
    """Watch the parent that started this process; call ``on_gone`` and exit when it dies."""

    def __init__(self, on_gone: Callable[[str], None] | None = None, exit_code: int = 1):
        self.on_gone = on_gone
        self.exit_code = exit_code
        self.parent_pid: int | None = None
        self._once = threading.Lock()

    def start(self) -> bool:
        """Start watching when a parent with a lifeline started this process; else return False.

        The parent's name is taken out of the environment, so processes this one starts do
        not mistake it for their own parent.
        """
        value = os.environ.pop(PARENT_ENV, None)
        if not value or not value.isdigit():
            return False
        self.parent_pid = int(value)
        if os.name != "nt" and os.getppid() != self.parent_pid:
            self.parent_gone()  # it died before this process got this far
        threading.Thread(target=self._watch, name="parent-watch", daemon=True).start()
        return True

    def parent_gone(self, reason: str | None = None) -> None:
        """Record why (``on_gone``) and end this process at once; only the first call acts."""
        if not self._once.acquire(blocking=False):
            return
        reason = reason or f"the program that started it (process {self.parent_pid}) ended"
        try:
            if self.on_gone is not None:
                self.on_gone(reason)
        finally:
            try:
                sys.stderr.write(f"annotune: stopping: {reason}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os._exit(self.exit_code)

    def _watch(self) -> None:
        fd = sys.stdin.fileno() if sys.stdin is not None else -1
        if os.name == "nt":
            self._watch_blocking(fd)
        else:
            self._watch_polling(fd)

    def _watch_polling(self, fd: int) -> None:
        import select

        watched = [fd] if fd >= 0 else []
        while True:
            try:
                ready, _, _ = select.select(watched, [], [], POLL_S)
            except (OSError, ValueError):
                ready, watched = [], []
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b""
                if not data:  # end of file: the parent's end of the pipe is closed
                    self.parent_gone()
                    return
            if os.getppid() != self.parent_pid:
                self.parent_gone()
                return

    def _watch_blocking(self, fd: int) -> None:
        if fd < 0:
            return
        while True:
            try:
                if not os.read(fd, 4096):
                    break
            except OSError:
                break
        self.parent_gone()
