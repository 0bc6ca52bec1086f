"""Runs on several processes that always end: a process that dies, fails or hangs ends the
whole run as failed (with the first cause recorded), never a run that waits forever; Ctrl-C
cancels every process at the same step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.store.training_lock import is_free
from annotune.core.tasks import TaskSettings
from annotune.core.training.config import TrainConfig
from annotune.core.training.job import prepare_run
from annotune.core.training.spec_record import lock_path, read_status, record_in_project

TEXTS = ("great pizza 🍕", "awful 👨‍👩‍👧 trip", "很好 movie", "Jose\u0301 was bad",
         "שלום good", "مرحبا bad", "line one\r\nline two")
# Generous bounds for a busy two-core machine; without the fixes these runs wait for
# torch's own timeouts (10 to 30 minutes) or forever.
ENDS_WITHIN_S = 180.0

# Put into a folder on PYTHONPATH: in the process whose RANK is FAULT["rank"], the
# FAULT["step"]-th training step dies (SIGKILL), fails (an exception) or hangs (a sleep that
# SIGTERM ends, as the launcher's shutdown does).
FAULT_HOOK = '''
import importlib.abc, json, os, signal, sys, time
FAULT = json.loads(os.environ.get("ANNOTUNE_TEST_FAULT") or "null")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "annotune.core.training.distributed":
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            share, steps = module.DistributedRanks.share, [0]

            def faulty(self, batch):
                steps[0] += 1
                if steps[0] == FAULT["step"]:
                    if FAULT["how"] == "die":
                        os.kill(os.getpid(), signal.SIGKILL)
                    if FAULT["how"] == "hang":
                        signal.signal(signal.SIGTERM, signal.SIG_DFL)
                        time.sleep(3600)
                    raise OSError(28, "No space left on device (node 2's scratch disk)")
                return share(self, batch)

            module.DistributedRanks.share = faulty

        spec.loader.exec_module = exec_module
        return spec


if FAULT and os.environ.get("RANK") == str(FAULT["rank"]):
    sys.meta_path.insert(0, _Finder())
'''


@pytest.fixture
def project_path(tmp_path, tiny_base_model) -> Path:
    records = []
    for i in range(40):
        label = "pos" if i % 2 == 0 else "neg"
        text = f"{TEXTS[i % len(TEXTS)]} {'good' if label == 'pos' else 'bad'} n{i}"
        records.append(ImportRecord(fields={"text": text}, annotation={"label": label},
                                    line=i + 1))
    path = tmp_path / "reviews.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"), max_length=32),
                        base_model=str(tiny_base_model)) as project:
        project.add_examples(records, source="reviews.csv")
    return path


def prepared(project_path: Path, folder: Path, epochs: int = 2) -> Path:
    with Project.open(project_path) as project:
        return prepare_run(project, TrainConfig(epochs=epochs, batch_size=8, device="cpu"),
                           folder).folder


def launch(run_dir: Path, hooks: Path, fault: dict | None, **env: str) -> subprocess.Popen:
    """Start torchrun with 2 processes on the run, in a session of its own (a terminal job)."""
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(FAULT_HOOK)
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "ANNOTUNE_TEST_FAULT": json.dumps(fault),
                "PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")]),
                **env}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc-per-node", "2", "-m", "annotune.core.training.job",
                             str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env, start_new_session=True)


def finish(process: subprocess.Popen, timeout: float = ENDS_WITHIN_S) -> tuple[int, list, str]:
    """Wait for the launch to end; return its exit code, rank 0's events and its stderr."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"the launch was still running {timeout:g} s later") from None
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return process.returncode, events, err


@pytest.fixture
def launches():
    """Every launch a test starts is killed at its end, whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def test_a_process_killed_mid_step_fails_the_run(project_path, tmp_path, launches):
    run_dir = prepared(project_path, tmp_path / "run")
    launches.append(launch(run_dir, tmp_path / "hooks", {"rank": 1, "step": 3, "how": "die"}))
    code, events, _ = finish(launches[-1])
    assert code != 0
    failed = events[-1]
    assert failed["event"] == "failed" and "another process of the run ended" in failed["error"]
    assert read_status(run_dir)["status"] == "failed"
    assert is_free(lock_path(run_dir))  # rank 0 is gone too
    with Project.open(project_path) as project:
        run = project.run(failed["run_id"])
    assert run["status"] == "failed" and "another process" in run["error"]


def test_the_first_cause_of_a_failure_is_what_the_run_records(project_path, tmp_path,
                                                              launches):
    run_dir = prepared(project_path, tmp_path / "run")
    launches.append(launch(run_dir, tmp_path / "hooks", {"rank": 1, "step": 2, "how": "fail"}))
    code, events, err = finish(launches[-1])
    assert code != 0
    failed = events[-1]
    assert failed["event"] == "failed"
    assert failed["error"].startswith("process 1 of 2 (on ")
    assert "No space left on device (node 2's scratch disk)" in failed["error"]
    assert "annotune: process 1: " in err  # and the launcher's log says it where it happened
    with Project.open(project_path) as project:
        assert "No space left on device" in project.run(failed["run_id"])["error"]


def test_a_hung_process_ends_the_run_after_the_collective_timeout(project_path, tmp_path,
                                                                  launches):
    run_dir = prepared(project_path, tmp_path / "run")
    launches.append(launch(run_dir, tmp_path / "hooks", {"rank": 1, "step": 3, "how": "hang"},
                           ANNOTUNE_DISTRIBUTED_TIMEOUT_S="6"))
    code, events, _ = finish(launches[-1])
    assert code != 0
    failed = events[-1]
    assert failed["event"] == "failed" and "stopped answering" in failed["error"]
    assert "6000ms" in failed["error"]  # the timeout set, not torch's default half hour
    assert read_status(run_dir)["status"] == "failed"


def test_ctrl_c_cancels_every_process_at_the_same_step(project_path, tmp_path, launches):
    run_dir = prepared(project_path, tmp_path / "run", epochs=500)
    process = launch(run_dir, tmp_path / "hooks", None)
    launches.append(process)
    seen = []
    for line in process.stdout:
        if line.startswith("{"):
            seen.append(json.loads(line))
            if seen[-1]["event"] == "metrics":  # an epoch is done: a model to keep
                break
    else:
        raise AssertionError(f"the run ended before its first epoch: {process.stderr.read()}")
    pressed = time.monotonic()
    process.send_signal(signal.SIGINT)  # what Ctrl-C in torchrun's terminal sends
    code, events, err = finish(process, timeout=60)
    took = time.monotonic() - pressed
    assert code != 0 and took < 30, (code, took)
    cancelled = events[-1]
    assert cancelled["event"] == "cancelled", err[-2000:]
    assert cancelled["artifact_dir"] == str(run_dir / "model") and cancelled["best_epoch"] >= 1
    assert json.loads((run_dir / "run.json").read_text())["status"] == "cancelled"
    with Project.open(project_path) as project:
        assert project.run(cancelled["run_id"])["status"] == "cancelled"


def test_rank_zero_killed_leaves_a_run_recorded_as_failed(project_path, tmp_path, launches):
    run_dir = prepared(project_path, tmp_path / "run")
    launches.append(launch(run_dir, tmp_path / "hooks", {"rank": 0, "step": 3, "how": "die"}))
    code, events, _ = finish(launches[-1])
    assert code != 0 and events[-1]["event"] != "finished"
    assert read_status(run_dir)["status"] == "running"  # nobody was left to say otherwise
    assert is_free(lock_path(run_dir))  # ...and the kernel let its lock go
    with Project.open(project_path) as project:
        run_id, added = record_in_project(project, run_dir)
        run = project.run(run_id)
    assert added and run["status"] == "failed" and "killed or crashed" in run["error"]
