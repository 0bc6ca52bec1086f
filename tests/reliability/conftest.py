"""Programs the reliability tests run beside the test: importers and savers.

Each is a short script started with the test's Python. It prints one line per event the test
waits for ("ready", "saved ID LABEL", "step N", ...), so the test knows exactly what the
program had confirmed when it was killed. The helpers reach the tests through the ``programs``
fixture (a conftest is not importable in importlib mode).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

TEXTS = ("Jose\u0301 liked it 🍕", "👨‍👩‍👧 a family film", "東京の映画", "فيلم رائع",
         "שלום\r\nעולם")
LABELS = ("neg", "pos")


def start(script: str, *args: str) -> subprocess.Popen[str]:
    """Start a Python program; its stdout is read line by line by the test."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def expect(child: subprocess.Popen[str], word: str, timeout_s: float = 60) -> str:
    """Read lines until one starts with ``word``; fail with the program's errors otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        if line.startswith(word):
            return line.strip()
    child.kill()
    raise AssertionError(f"expected {word!r}; the program said: {child.stderr.read()[-2000:]}")


def kill(child: subprocess.Popen[str]) -> list[str]:
    """Kill -9 and reap a program; return the lines it had printed and not yet been read."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate(timeout=30)
    return rest.splitlines()


def wait_until(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def raw(path: Path, sql: str) -> int:
    """Ask the file itself (not through annotune), read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(sql).fetchone()[0]


def pending_rows(path: Path) -> int:
    """Rows an unfinished import has committed so far (0 when none runs)."""
    return raw(path, "SELECT COUNT(*) FROM examples WHERE id >= "
                     "(SELECT IFNULL(MIN(first_id), 9223372036854775807) FROM imports)")


SAVER = """
    import sys
    from annotune.core.store import Project
    project = Project.open(sys.argv[1])
    first, last = int(sys.argv[2]), int(sys.argv[3])
    print("ready", flush=True)
    for i, example_id in enumerate(range(first, last + 1)):
        label = ("neg", "pos")[(example_id + i) % 2]
        project.save_annotation(example_id, {"label": label})
        print(f"saved {example_id} {label}", flush=True)  # only once committed
    print("done", flush=True)
"""

# argv: project, rows, prefix, and a hook: where to stop and wait to be killed ("indexing",
# "finish", "after"), "slow" steps, or "real" step sizes (else 1,000 rows a step).
IMPORTER = """
    import sys, time
    from annotune.core.formats.base import ImportRecord
    from annotune.core.store import Project, batches, bulk
    path, rows, prefix, hook = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    texts = ("Jose\\u0301 liked it 🍕", "👨‍👩‍👧 a family film", "東京の映画", "فيلم رائع",
             "שלום\\r\\nעולם")
    if hook != "real":  # steps of 1,000 rows: many of them, whatever the machine's speed
        for name in ("FIRST_STEP_ROWS", "MIN_STEP_ROWS", "MAX_STEP_ROWS"):
            setattr(bulk, name, 1000)
    steps = [0]
    begin = bulk._Steps._complete
    def complete(self, *args):
        begin(self, *args)
        steps[0] += 1
        print(f"step {steps[0]}", flush=True)
        if hook == "slow":
            time.sleep(0.05)
    bulk._Steps._complete = complete
    index = bulk._Steps._index_hashes
    def indexing(self):
        print("indexing", flush=True)
        if hook == "indexing":
            time.sleep(60)
        index(self)
    bulk._Steps._index_hashes = indexing
    finish = batches.finish
    def finishing(*args):
        finish(*args)
        if hook == "finish":  # inside the last transaction, before its commit
            print("finishing", flush=True)
            time.sleep(60)
    batches.finish = finishing
    project = Project.open(path)
    print("ready", flush=True)
    records = (ImportRecord(fields={"text": f"{prefix} {i} {texts[i % 5]}"}, line=i + 1,
                            annotation={"label": ("neg", "pos")[i % 2]}) for i in range(rows))
    summary = project.add_examples(records, source=f"{prefix}.jsonl")
    print(f"imported {summary.added}", flush=True)
    if hook == "after":
        time.sleep(60)
"""


@contextlib.contextmanager
def running(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    child = start(script, *args)
    try:
        yield child
    finally:
        if child.poll() is None:
            kill(child)


@pytest.fixture
def programs() -> SimpleNamespace:
    """Hand the tests these helpers and scripts."""
    return SimpleNamespace(start=start, expect=expect, kill=kill, wait_until=wait_until,
                           raw=raw, pending_rows=pending_rows, running=running, SAVER=SAVER,
                           IMPORTER=IMPORTER, TEXTS=TEXTS, LABELS=LABELS)
