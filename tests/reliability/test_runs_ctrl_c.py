"""Ctrl-C in the terminal of `annotune train` ends the training in every phase, recorded as
cancelled: before the training loop runs the child stops at once, and a phase that never asks
whether to stop (a long step, an evaluation batch, a checkpoint save) is cut short."""

from __future__ import annotations

import time

import pytest

from annotune.core.store import Project

# Each phase is stretched to two minutes of work that never asks whether to stop.
PHASES = ("startup", "model", "encode", "probe", "step", "eval", "save")
BEFORE_THE_RUN = ("startup",)  # the run is created after the imports and the data split


@pytest.mark.parametrize("phase", PHASES)
def test_ctrl_c_ends_the_training_in_every_phase(phase, project_path, training, processes):
    run = training(project_path, slow=phase)
    child = run.reach(phase)
    run.interrupt()
    code, err = run.finish()
    assert code == 130, err
    assert "training cancelled" in err
    assert processes.wait_until(lambda: processes.ended(child), processes.ENDS_WITHIN_S)
    with Project.open(project_path) as project:
        runs = project.runs()
    if phase in BEFORE_THE_RUN:
        assert runs == []
    else:
        assert [r["status"] for r in runs] == ["cancelled"], runs


def test_a_step_that_outlasts_the_grace_period_is_killed_and_recorded(project_path, training,
                                                                       processes):
    run = training(project_path, slow="step")
    child = run.reach("step")
    run.interrupt()
    code, err = run.finish()
    assert code == 130 and processes.ended(child)
    with Project.open(project_path) as project:
        (record,) = project.runs()
    assert record["status"] == "cancelled"
    assert record["error"].startswith("stopped by force: it had not stopped 2 s after")


def test_a_second_ctrl_c_kills_the_training_at_once(project_path, training, processes):
    run = training(project_path, slow="save")
    child = run.reach("save")
    run.interrupt()
    time.sleep(0.5)  # the first asked the child to stop; it is still saving
    run.interrupt()
    code, err = run.finish()
    assert code == 130, err
    assert processes.wait_until(lambda: processes.ended(child), processes.ENDS_WITHIN_S)
    with Project.open(project_path) as project:
        (record,) = project.runs()
    assert record["status"] == "cancelled"
    assert record["error"] == "stopped at once on a second request"
