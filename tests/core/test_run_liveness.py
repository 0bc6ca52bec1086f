"""A run is "running" only while a live training process holds the project's training lock:
a run whose process is gone shows as failed (with why) the next time anything looks."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from annotune.core import cli
from annotune.core.store import Project
from annotune.core.store import runs as store_runs
from annotune.core.tasks import TaskSettings

ABANDONED = "the training process ended without recording its end (killed or crashed)"


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "Café 🍕.annotune", task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as project:
        yield project


def _hold_in_another_process(project_path, extra: str = "") -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys
        from annotune.core.store import Project
        project = Project.open({str(project_path)!r})
        lock = project.lock_training()
        run_id = project.create_run({{"epochs": 1}}, "cpu")
        lock.describe(run_id=run_id)
        print(run_id, flush=True)
        {extra}
        sys.stdin.read()
        """)
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    process.run_id = int(process.stdout.readline())
    return process


def test_a_stale_running_run_shows_as_failed_in_a_fresh_open(project, capsys):
    run_id = project.create_run({"epochs": 3}, "cpu")  # as a training killed with kill -9
    project.record_epoch(run_id, 1, {"f1": 0.5})
    path = project.path
    project.close()
    with Project.open(path) as fresh:
        (record,) = fresh.runs()
        assert record["status"] == "failed" and record["error"] == ABANDONED
        assert record["finished"] is not None
        assert record["duration_s"] is not None and record["duration_s"] >= 0  # to its epoch
        assert fresh.run(run_id)["status"] == "failed"
    assert cli.main(["runs", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "failed" in shown and ABANDONED in shown


def test_run_alone_closes_a_stale_run_too(project):
    run_id = project.create_run({}, "cpu")
    assert project.run(run_id)["status"] == "failed"
    assert project.run(run_id)["duration_s"] is None  # it died at an unknown moment


def test_a_run_of_a_live_process_stays_running_until_it_is_killed(project):
    holder_process = _hold_in_another_process(project.path)
    try:
        assert project.run(holder_process.run_id)["status"] == "running"
        assert [r["status"] for r in project.runs()] == ["running"]
    finally:
        holder_process.send_signal(signal.SIGKILL)
        holder_process.wait()
    assert project.run(holder_process.run_id)["status"] == "failed"


SLEEPER = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"


@pytest.mark.parametrize("how", ["subprocess", "fork"])
def test_the_lock_ends_with_its_holder_not_with_processes_it_started(project, how, tmp_path):
    """A process the training started (or forked) and that outlives it never keeps the lock."""
    up = tmp_path / "up"
    start = {"subprocess": f"subprocess.Popen([sys.executable, '-c', {SLEEPER!r}, {str(up)!r}])"
                           ".pid",
             "fork": "os.fork()"}[how]
    extra = (f"import os, pathlib, subprocess, time; pid = {start}\n"
             f"        if pid == 0: pathlib.Path({str(up)!r}).touch(); time.sleep(60)\n"
             "        print(pid, flush=True)")
    holder_process = _hold_in_another_process(project.path, extra)
    started = int(holder_process.stdout.readline())
    deadline = time.monotonic() + 30
    while not up.exists() and time.monotonic() < deadline:  # a forked one: past its fork
        time.sleep(0.02)                                      # handlers
    try:
        holder_process.send_signal(signal.SIGKILL)
        holder_process.wait()
        os.kill(started, 0)  # still alive
        assert project.run(holder_process.run_id)["status"] == "failed"
    finally:
        os.kill(started, signal.SIGKILL)


def test_a_closing_look_never_touches_a_run_created_after_it(project):
    from annotune.core.store.training_lock import TrainingLock

    seen = project.create_run({}, "cpu")  # a run whose training process is gone
    looked = [seen]  # what a look saw running before it found the lock free
    with TrainingLock(store_runs.lock_path(project.runs_dir)) as lock:
        assert lock.acquire()  # meanwhile a new training starts
        new = project.create_run({}, "cpu")
        assert store_runs.end_abandoned_runs(project.db, looked) == [seen]
        assert project.db.execute("SELECT status FROM runs WHERE id = ?",
                                  [new]).fetchone()[0] == "running"


def test_taking_the_lock_closes_runs_left_running(project):
    stale = project.create_run({}, "cpu")
    with project.lock_training() as lock:
        assert lock.held
        mine = project.create_run({}, "cpu")
        statuses = {r["id"]: r["status"] for r in project.runs()}  # looked at while training
    assert statuses == {stale: "failed", mine: "running"}


def test_one_process_cannot_take_the_lock_twice_and_says_who_holds_it(project):
    from annotune.core.store.runs import TrainingBusyError
    from annotune.core.store.training_lock import holder, is_free

    with project.lock_training() as lock:
        run_id = project.create_run({}, "cpu")
        lock.describe(run_id=run_id)
        path = store_runs.lock_path(project.runs_dir)
        assert not is_free(path)
        assert holder(path)["pid"] == os.getpid() and holder(path)["run_id"] == run_id
        with pytest.raises(TrainingBusyError) as caught:
            project.lock_training()
        message = str(caught.value)
        assert f"already running (run {run_id}, started at " in message
        assert message.endswith(f", process {os.getpid()}) — wait for it or stop it")
        assert str(project.path) in message
    assert is_free(path)


def test_the_busy_message_names_another_host(project):
    with project.lock_training() as lock:
        lock.describe(since="2030-01-02T03:04:05+00:00")
        path = store_runs.lock_path(project.runs_dir)
        path.write_text('{"pid": 77, "host": "other-box", "since": "2030-01-02T03:04:05+00:00"}')
        error = store_runs.busy_error(project.db, project.runs_dir)
    assert "(starting since 2030-01-02 " in str(error) and "process 77 on other-box)" in str(error)
    assert socket.gethostname() != "other-box"


def test_a_lock_held_in_the_same_process_keeps_its_run_running(project):
    """Locks granted per process (flock emulated over NFS) must not fool the holder itself."""
    with project.lock_training():
        run_id = project.create_run({}, "cpu")
        assert project.run(run_id)["status"] == "running"


def test_finish_run_only_running_leaves_an_ended_run_alone(project):
    run_id = project.create_run({}, "cpu")
    project.finish_run(run_id, "cancelled")
    assert project.finish_run(run_id, "failed", error="later", only_running=True) is False
    assert project.run(run_id)["status"] == "cancelled"
    assert store_runs.end_run_in_file(project.path, run_id, "failed", "x") is False


def test_an_exit_by_signal_is_named():
    from annotune.core.training.job_process import describe_exit

    assert describe_exit(-9) == "killed by signal 9 (SIGKILL)"
    assert describe_exit(1) == "exit code 1"


def test_a_stop_request_raises_until_the_loop_asks_then_waits_for_it():
    from annotune.core.training.stopping import StopControl, StopRequested

    control = StopControl()
    with pytest.raises(StopRequested):
        control.handle(signal.SIGINT, None)
    control = StopControl()
    with pytest.raises(StopRequested):  # held to the end of the block, then raised
        with control.deferred():
            control.handle(signal.SIGINT, None)
            written = True
    assert written
    control = StopControl()
    assert control() is False  # the loop asks: from now on requests wait for it
    control.handle(signal.SIGINT, None)
    assert control() is True


def test_the_training_lock_is_released_by_the_kernel_when_its_process_is_killed(tmp_path):
    from annotune.core.store.training_lock import TrainingLock, holder, is_free

    path = tmp_path / "runs" / "training.lock"
    code = ("import sys, time; from annotune.core.store.training_lock import TrainingLock; "
            f"lock = TrainingLock({str(path)!r}); assert lock.acquire(); lock.describe(); "
            "print('held', flush=True); time.sleep(60)")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    assert not is_free(path) and not TrainingLock(path).acquire(wait=0.1)
    assert holder(path)["pid"] == process.pid
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while not is_free(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    lock = TrainingLock(path)
    assert lock.acquire(wait=0.1)
    lock.release()


def test_a_lifeline_child_gets_a_stdin_pipe_its_parent_name_and_a_session_apart():
    from annotune.core.lifeline import PARENT_ENV, child_options

    options = child_options({"EXTRA": "1"})
    assert options["stdin"] == subprocess.PIPE
    assert options["env"][PARENT_ENV] == str(os.getpid()) and options["env"]["EXTRA"] == "1"
    assert options.get("start_new_session") or options.get("creationflags")


def test_a_stale_run_is_shown_as_failed_even_when_it_cannot_be_written(project, monkeypatch):
    run_id = project.create_run({}, "cpu")

    def cannot_write(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(store_runs, "end_abandoned_runs", cannot_write)
    assert project.run(run_id)["status"] == "failed"
    assert project.runs()[0]["error"] == ABANDONED
    assert project.db.execute("SELECT status FROM runs").fetchone()[0] == "running"
