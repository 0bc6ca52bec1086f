"""Repeated Ctrl-C and kill -9 at random moments of real (unstretched) trainings: every run
ends recorded, no child outlives its CLI, nothing stays "running". Run with -m soak."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from annotune.core.store import Project

TRIES = 12


def _at_a_random_moment(run, rng: random.Random) -> int | None:
    """Wait until the child is past its start (or the CLI ended), then a random while longer."""
    child = run.reach("startup")
    time.sleep(rng.uniform(0.0, 6.0))
    return child


@pytest.mark.soak
def test_ctrl_c_at_random_moments(project_path, training, processes, tmp_path):
    rng = random.Random(1)
    for attempt in range(TRIES):
        path = tmp_path / f"copy-{attempt}.annotune"
        path.write_bytes(project_path.read_bytes())
        run = training(path, slow=None, epochs=3)
        child = _at_a_random_moment(run, rng)
        run.interrupt()
        code, err = run.finish()
        assert code in (0, 130), err
        assert processes.wait_until(lambda c=child: processes.ended(c),
                                    processes.ENDS_WITHIN_S)
        with Project.open(path) as project:
            statuses = [r["status"] for r in project.runs()]
        assert statuses in ([], ["cancelled"], ["finished"]), (attempt, statuses, err)


@pytest.mark.soak
@pytest.mark.parametrize("target", ["cli", "cli-group", "child", "both"])
def test_kill_9_at_random_moments(target, project_path, training, processes, tmp_path):
    rng = random.Random(2)
    for attempt in range(TRIES // 2):
        path = tmp_path / f"copy-{attempt}.annotune"
        path.write_bytes(project_path.read_bytes())
        run = training(path, slow=None, epochs=3)
        child = _at_a_random_moment(run, rng)
        if target == "both":  # together: the CLI cannot record anything either
            os.kill(run.process.pid, signal.SIGSTOP)
        if target in ("child", "both"):
            os.kill(child, signal.SIGKILL)
        if target == "cli-group":
            os.killpg(run.process.pid, signal.SIGKILL)
        elif target != "child":
            os.kill(run.process.pid, signal.SIGKILL)
        assert processes.wait_until(lambda c=child: processes.ended(c),
                                    processes.ENDS_WITHIN_S)
        run.finish()
        with Project.open(path) as project:
            statuses = [r["status"] for r in project.runs()]
        assert "running" not in statuses, (attempt, statuses)
