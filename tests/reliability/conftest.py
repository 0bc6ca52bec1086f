"""Fixtures for the cross-process reliability tests.

Runs: a tiny project, a CLI training that can be stretched in any phase, and ways to tell when
a process has really ended. Store: importers and savers run beside the test, each a short
script that prints one line per event the test waits for ("ready", "saved ID LABEL", "step
N", ...), so the test knows exactly what the program had confirmed when it was killed.
Helpers reach the tests through fixtures (a conftest is not importable in importlib mode)."""

from __future__ import annotations

import contextlib
import json
import os
import random
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

from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

HOOKS = Path(__file__).resolve().parent / "phase_hooks"
ANNOTUNE = [sys.executable, "-m", "annotune.core.cli"]
# Generous bounds, so a busy machine never fails a test that the old code fails by tens of
# seconds; the tight figures are measured by bench/stop_latency.py.
ENDS_WITHIN_S = 15.0
STARTS_WITHIN_S = 120.0

# Texts as users have them: emoji, a ZWJ family, CJK, a combining accent, RTL, CRLF
TEXTS = ("great pizza 🍕", "awful 👨‍👩‍👧 trip", "很好 movie", "Jose\u0301 was bad",
         "שלום good", "مرحبا bad", "line one\r\nline two good")


def _records(n: int) -> list[ImportRecord]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        text = f"{rng.choice(TEXTS)} {'good' if label == 'pos' else 'bad'} n{i}"
        out.append(ImportRecord(fields={"text": text}, annotation={"label": label}, line=i + 1))
    return out


@pytest.fixture
def project_path(tmp_path, tiny_base_model) -> Path:
    """A labeled text-classification project that trains the tiny BERT in seconds."""
    path = tmp_path / "reviews.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"), max_length=32),
                        base_model=str(tiny_base_model)) as project:
        project.add_examples(_records(40), source="train.csv")
    return path


def ended(pid: int) -> bool:
    """Tell whether a process has ended: all its threads gone, its files (and locks) closed.

    A zombie nobody reaps counts as ended once its last thread has exited: a killed process's
    main thread turns into a zombie while other threads may still be on their way out.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    except OSError:
        return False  # no /proc: alive as far as anyone can tell
    return fields[0] in ("Z", "X") and int(fields[17]) <= 1  # state, number of threads


def wait_until(condition, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


class Training:
    """``annotune train`` in a session of its own (as a terminal's foreground job), with its
    child's phases marked and one of them stretched."""

    def __init__(self, project: Path, marks: Path, slow: str | None, epochs: int = 2,
                 extra_env: dict[str, str] | None = None):
        marks.mkdir(parents=True, exist_ok=True)
        self.marks = marks
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]),
               "ANNOTUNE_TEST_PHASES": json.dumps({"marks": str(marks), "slow": slow,
                                                   "seconds": 120}), **(extra_env or {})}
        self.process = subprocess.Popen(
            [*ANNOTUNE, "train", str(project), "--epochs", str(epochs), "--device", "cpu",
             "--batch-size", "8"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True)
        self.child_pid: int | None = None

    def reach(self, phase: str, timeout: float = STARTS_WITHIN_S) -> int:
        """Wait until the child has entered ``phase``; return the child's process id."""
        mark = self.marks / phase
        if not wait_until(lambda: mark.exists() or self.process.poll() is not None, timeout):
            raise AssertionError(f"the training never reached {phase}")
        if not mark.exists():
            out, err = self.process.communicate()
            raise AssertionError(f"the CLI ended before {phase}: {err[-2000:]}")
        self.child_pid = int(mark.read_text())
        return self.child_pid

    def interrupt(self) -> None:
        """Press Ctrl-C in the CLI's terminal: SIGINT to its foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self, timeout: float = ENDS_WITHIN_S) -> tuple[int, str]:
        """Wait for the CLI to end; return its exit code and stderr."""
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.cleanup()
            raise AssertionError(f"the CLI was still running {timeout:g} s later") from None
        return self.process.returncode, err

    def cleanup(self) -> None:
        for pid in (self.process.pid, self.child_pid):
            if pid is None:
                continue
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.process.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            pass


@pytest.fixture
def training(tmp_path):
    """Start ``annotune train`` with a stretched phase; everything started is killed at the end."""
    started: list[Training] = []

    def start(project: Path, slow: str | None, **kwargs) -> Training:
        run = Training(project, tmp_path / f"marks-{len(started)}", slow, **kwargs)
        started.append(run)
        return run

    yield start
    for run in started:
        run.cleanup()


@pytest.fixture(name="processes")
def processes_fixture():
    """Hand tests the process helpers (conftest is not importable in importlib mode)."""
    return SimpleNamespace(ended=ended, wait_until=wait_until, ENDS_WITHIN_S=ENDS_WITHIN_S)



# -- the store: programs that import and save beside the test ---------------------------------
STORE_TEXTS = ("Jose\u0301 liked it 🍕", "👨‍👩‍👧 a family film", "東京の映画", "فيلم رائع",
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


def wait_for(condition: Callable[[], bool], timeout_s: float = 60) -> None:
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
    return SimpleNamespace(start=start, expect=expect, kill=kill, wait_until=wait_for,
                           raw=raw, pending_rows=pending_rows, running=running, SAVER=SAVER,
                           IMPORTER=IMPORTER, TEXTS=STORE_TEXTS, LABELS=LABELS)
