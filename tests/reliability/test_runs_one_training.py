"""One training per project at a time, across processes: a second `annotune train`, a job
child, an inline training or the desktop's Train button is refused with who holds it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from annotune.core.store import Project
from annotune.core.training.config import TrainConfig
from annotune.core.training.job import run_training_inline

BUSY = re.compile(r"a training of this project is already running \(run (\d+), started at "
                  r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, process (\d+)\) — wait for it or stop it")


def test_a_second_cli_training_is_refused_while_one_runs(project_path, training):
    first = training(project_path, slow="step")
    child = first.reach("step")
    second = subprocess.run(
        [sys.executable, "-m", "annotune.core.cli", "train", str(project_path), "--epochs", "1"],
        capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second.stderr
    found = BUSY.search(second.stderr)
    assert found and found.groups() == ("1", str(child)), second.stderr
    with Project.open(project_path) as project:
        assert [r["status"] for r in project.runs()] == ["running"]  # the first one, alive
    first.interrupt()
    assert first.finish()[0] == 130


@pytest.fixture
def lock_holder(project_path):
    """Another process that holds the project's training lock, as a training in its start-up."""
    code = textwrap.dedent(f"""
        import sys, time
        from annotune.core.store import Project
        project = Project.open({str(project_path)!r})
        lock = project.lock_training()
        lock.describe(since="2030-01-02T03:04:05+00:00")
        print("held", flush=True)
        sys.stdin.read()
        """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    yield holder
    holder.kill()
    holder.wait()


def test_the_job_child_refuses_under_the_lock_itself(project_path, lock_holder):
    """The parent's quick check can be passed by a race; the child's lock is the exact one."""
    out = subprocess.run([sys.executable, "-m", "annotune.core.training.job", "--project",
                          str(project_path), "--config", json.dumps({"epochs": 1})],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    (event,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert event["event"] == "failed" and event["busy"] is True
    assert "already running (starting since 2030-01-02 " in event["error"]
    assert f"process {lock_holder.pid})" in event["error"]
    with Project.open(project_path) as project:
        assert project.runs() == []


def test_an_inline_training_is_refused_and_allowed_once_the_holder_is_gone(project_path,
                                                                           lock_holder):
    from annotune.core.store.runs import TrainingBusyError

    events = []
    with Project.open(project_path) as project:
        with pytest.raises(TrainingBusyError, match="already running"):
            run_training_inline(project, TrainConfig(epochs=1, device="cpu"), events.append)
        assert events[-1]["busy"] is True and project.runs() == []
        lock_holder.kill()  # kill -9 releases the lock with the process
        lock_holder.wait()
        result = run_training_inline(project, TrainConfig(epochs=1, device="cpu"))
        assert result.status == "finished"
        assert [r["status"] for r in project.runs()] == ["finished"]


def test_the_desktop_train_button_shows_a_running_training_clearly(project_path, lock_holder,
                                                                  qtbot, monkeypatch):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt

    from annotune.core.plugins import registry
    from annotune.desktop.train_panel import TrainPanel

    with Project.open(project_path) as project:
        panel = TrainPanel(project, registry().task(project.task_name))
        qtbot.addWidget(panel)
        ended = []
        panel.runEnded.connect(ended.append)
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(ended), timeout=30_000)
    assert ended[0]["busy"] is True
    text = panel.status.text()
    assert text.startswith("Training not started: ") and "already running" in text
    assert f"process {lock_holder.pid}" in text and "wait for it or stop it" in text
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()
