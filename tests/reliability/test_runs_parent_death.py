"""kill -9 of `annotune train` (alone, with its process group, with its child) or of the
training child: the child never outlives its parent, and no run stays "running"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from annotune.core.store import Project
from annotune.core.training.config import TrainConfig
from annotune.core.training.job import run_training_inline

ABANDONED = "the training process ended without recording its end (killed or crashed)"


@pytest.mark.parametrize("target", ["cli", "cli-group"])
def test_the_child_ends_with_a_killed_cli_and_records_why(target, project_path, training,
                                                          processes):
    run = training(project_path, slow="step")
    child = run.reach("step")
    if target == "cli":
        os.kill(run.process.pid, signal.SIGKILL)
    else:
        os.killpg(run.process.pid, signal.SIGKILL)  # the child sits in a session of its own
    assert processes.wait_until(lambda: processes.ended(child), processes.ENDS_WITHIN_S)
    with Project.open(project_path) as project:
        (record,) = project.runs()
    assert record["status"] == "failed"
    assert record["error"].startswith("the training stopped because the program that started "
                                      f"it (process {run.process.pid}) ended")


def test_the_child_ends_with_a_cli_killed_during_its_start_up(project_path, training,
                                                               processes):
    run = training(project_path, slow="startup")
    child = run.reach("startup")
    os.kill(run.process.pid, signal.SIGKILL)
    assert processes.wait_until(lambda: processes.ended(child), processes.ENDS_WITHIN_S)
    with Project.open(project_path) as project:
        assert project.runs() == []  # it had created no run yet


def test_a_run_whose_cli_and_child_were_killed_shows_as_failed(project_path, training,
                                                               processes):
    run = training(project_path, slow="eval")
    child = run.reach("eval")
    os.kill(run.process.pid, signal.SIGSTOP)  # so the CLI cannot record anything either
    os.kill(child, signal.SIGKILL)
    os.kill(run.process.pid, signal.SIGKILL)
    assert processes.wait_until(lambda: processes.ended(child), processes.ENDS_WITHIN_S)
    with Project.open(project_path) as project:
        (record,) = project.runs()
        assert record["status"] == "failed" and record["error"] == ABANDONED
        assert record["finished"] is not None
        assert project.run(record["id"])["status"] == "failed"


def test_a_killed_child_is_reported_by_the_cli(project_path, training, processes):
    run = training(project_path, slow="step")
    child = run.reach("step")
    os.kill(child, signal.SIGKILL)
    code, err = run.finish()
    assert code == 1
    assert "the training process ended unexpectedly (killed by signal 9 (SIGKILL))" in err
    with Project.open(project_path) as project:
        (record,) = project.runs()
    assert record["status"] == "failed" and "killed by signal 9 (SIGKILL)" in record["error"]


@pytest.fixture
def finished_run(project_path) -> str:
    with Project.open(project_path) as project:
        result = run_training_inline(project, TrainConfig(epochs=1, batch_size=8, device="cpu"))
    return str(result.out_dir)


def test_the_export_child_ends_with_its_parent(finished_run, tmp_path, processes):
    marks = tmp_path / "marks"
    marks.mkdir()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    # the export's parity check, after the ONNX graph is written into its hidden folder, is
    # stretched to two minutes, so the export is surely running when its parent dies
    (hooks / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import os, sys, time, importlib.abc
        class Finder(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != "annotune.core.export.parity":
                    return None
                for finder in sys.meta_path:
                    if finder is not self and hasattr(finder, "find_spec"):
                        spec = finder.find_spec(name, path, target)
                        if spec is not None:
                            break
                run = spec.loader.exec_module
                def exec_module(module):
                    run(module)
                    def slow(*args, **kwargs):
                        # written whole, then renamed: the test reads it once it exists
                        with open({str(marks / "export.tmp")!r}, "w") as handle:
                            handle.write(str(os.getpid()))
                        os.replace({str(marks / "export.tmp")!r}, {str(marks / "export")!r})
                        time.sleep(120)
                    module.run_batches = slow
                spec.loader.exec_module = exec_module
                return spec
        sys.meta_path.insert(0, Finder())
        """))
    # the lifeline as core/lifeline.child_options hands it over: a stdin pipe whose write
    # end only the parent holds, the parent named in ANNOTUNE_PARENT_PID, a session apart
    parent_code = textwrap.dedent(f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-m", "annotune.core.export.job",
                                  {finished_run!r}, {str(tmp_path / "bundle")!r}],
                                 stdout=subprocess.DEVNULL, stdin=subprocess.PIPE,
                                 env={{**os.environ, "ANNOTUNE_PARENT_PID": str(os.getpid())}},
                                 start_new_session=True)
        time.sleep(600)
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks),
                                                        os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=env)
    try:
        mark = marks / "export"
        assert processes.wait_until(mark.exists, 120), "the export never started"
        child = int(mark.read_text())
        os.kill(parent.pid, signal.SIGKILL)
        assert processes.wait_until(lambda: processes.ended(child), processes.ENDS_WITHIN_S)
        # no half bundle under the real name (the hidden folder it was writing may be left,
        # or removed when the child noticed first: either is safe)
        assert not (tmp_path / "bundle").exists()
    finally:
        parent.kill()
        parent.wait()
        if mark.exists():
            try:
                os.kill(int(mark.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_child_started_without_a_lifeline_watches_nothing(processes):
    """The job run by hand (from a shell) is not tied to whoever started it."""
    code = ("import json, os, time; from annotune.core.lifeline import ParentWatch; "
            "print(json.dumps([ParentWatch().start(), os.environ.get('ANNOTUNE_PARENT_PID')]),"
            " flush=True); time.sleep(60)")
    env = {k: v for k, v in os.environ.items() if k != "ANNOTUNE_PARENT_PID"}
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert json.loads(child.stdout.readline()) == [False, None]
        child.stdin.close()  # nothing watches it: it lives on
        assert not processes.wait_until(lambda: child.poll() is not None, 1.0)
    finally:
        child.kill()
        child.wait()


def test_closing_the_lifeline_ends_the_child(processes):
    code = ("import json, os, time; from annotune.core.lifeline import ParentWatch; "
            "print(json.dumps([ParentWatch(exit_code=3).start(), "
            "os.environ.get('ANNOTUNE_PARENT_PID')]), flush=True); time.sleep(60)")
    env = {**os.environ, "ANNOTUNE_PARENT_PID": str(os.getpid())}
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        # watching, and its parent's name is taken out of what it passes on
        assert json.loads(child.stdout.readline()) == [True, None]
        child.stdin.close()  # as the kernel does when the parent dies
        assert processes.wait_until(lambda: child.poll() is not None, processes.ENDS_WITHIN_S)
        assert child.returncode == 3
    finally:
        child.kill()
        child.wait()
