"""Fixtures for the cross-process run tests: a tiny project, a CLI training that can be stretched
in any phase, and ways to tell when a process has really ended."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

# pytest started in the background of a script ignores SIGINT, and so would the CLIs the
# tests start: Ctrl-C must reach them as a terminal sends it
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
    from types import SimpleNamespace

    return SimpleNamespace(ended=ended, wait_until=wait_until, ENDS_WITHIN_S=ENDS_WITHIN_S)


def pytest_collection_modifyitems(config, items):
    """Run the soak repetitions only when asked for (-m soak): they take minutes."""
    if "soak" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="soak repetition: run with -m soak")
    for item in items:
        if item.get_closest_marker("soak"):
            item.add_marker(skip)
