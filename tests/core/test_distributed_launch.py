"""A prepared run trained by the engines on the CPU (gloo): torchrun and accelerate launch with 2
processes, and one process alone; recorded in the project like any run and exported."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.store.training_lock import TrainingLock
from annotune.core.tasks import TaskSettings
from annotune.core.training.config import TrainConfig
from annotune.core.training.job import prepare_run
from annotune.core.training.spec import load_spec
from annotune.core.training.spec_record import lock_path, read_status

TEXTS = ("great pizza 🍕", "awful 👨‍👩‍👧 trip", "很好 movie", "Jose\u0301 was bad",
         "שלום good", "مرحبا bad", "line one\r\nline two", "split\u2028here")
# one thread per process: two processes share this machine's two cores
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
JOB = ["-m", "annotune.core.training.job"]
LAUNCH_TIMEOUT_S = 600


def torchrun(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # --standalone: a free port of its own (other launches may run on this machine)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", *args], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, timeout=LAUNCH_TIMEOUT_S)


def one_process(run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *JOB, str(run_dir)], capture_output=True, text=True,
                          env=ENV, timeout=LAUNCH_TIMEOUT_S)


def events(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def still_model(tmp_path_factory, tiny_base_model) -> Path:
    """The tiny BERT without dropout: one process and two then compute the very same maths."""
    from transformers import AutoTokenizer, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert-no-dropout")
    model = BertModel.from_pretrained(tiny_base_model)
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(folder)
    return folder


def make_project(path: Path, base_model: Path, n: int = 61) -> Path:
    records = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        text = f"{TEXTS[i % len(TEXTS)]} {'good' if label == 'pos' else 'bad'} n{i}"
        records.append(ImportRecord(fields={"text": text}, annotation={"label": label},
                                    line=i + 1))
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"), max_length=32),
                        base_model=str(base_model)) as project:
        project.add_examples(records, source="reviews.csv")
    return path


CONFIG = TrainConfig(epochs=3, learning_rate=5e-3, batch_size=8, device="cpu",
                     early_stopping_patience=0)


def test_two_processes_train_the_same_steps_and_scores_as_one(tmp_path, still_model):
    """Global batch 8: 2 processes of 4 each against 1 process of 8, same seed and data.

    Tolerance: without dropout the two runs differ only in the order floating-point sums
    are taken (the gradient all-reduce, sharded evaluation), so per-epoch losses agree to
    1e-4 and the validation scores are equal. (With dropout each process draws its own
    masks, as every DDP run does, and the runs drift apart as two seeds would.)
    """
    project_path = make_project(tmp_path / "reviews.annotune", still_model)
    with Project.open(project_path) as project:
        alone = prepare_run(project, CONFIG, tmp_path / "alone")
        shared = prepare_run(project, CONFIG, tmp_path / "two-processes")
    train_count = alone.examples("train")
    # the last batch of each epoch splits unevenly between the processes (4 and 3 features):
    # the weights must still add up to the batch's mean
    assert train_count % 8 == 7

    one = one_process(alone.folder)
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun(*JOB, str(shared.folder))
    assert two.returncode == 0, two.stderr[-3000:]

    first, second = (json.loads((s.folder / "run.json").read_text()) for s in (alone, shared))
    assert second["device"]["processes"] == 2 and second["device"]["backend"] == "gloo"
    assert "processes" not in first["device"]
    assert first["steps"] == second["steps"] == 3 * -(-train_count // 8)
    for a, b in zip(first["history"], second["history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-4)
        assert b["validation_loss"] == pytest.approx(a["validation_loss"], abs=1e-4)
        assert b["metrics"]["macro_f1"] == pytest.approx(a["metrics"]["macro_f1"], abs=1e-9)
    assert second["best_epoch"] == first["best_epoch"]

    # only rank 0 spoke: one event stream, one started and one finished event
    kinds = [e["event"] for e in events(two)]
    assert kinds.count("started") == 1 and kinds[-1] == "finished", kinds
    assert kinds.count("metrics") == 3
    finished = events(two)[-1]

    # recorded in the project like any run: listed, and exported from where it is
    with Project.open(project_path) as project:
        runs = {run["id"]: run for run in project.runs()}
    run = runs[finished["run_id"]]
    assert run["status"] == "finished" and run["artifact_dir"] == str(shared.folder / "model")
    assert run["device"].startswith("cpu (2 × ") and [e["epoch"] for e in run["epochs"]] == [
        1, 2, 3]
    listed = subprocess.run([sys.executable, "-m", "annotune.core.cli", "runs",
                             str(project_path)], capture_output=True, text=True, env=ENV)
    assert listed.stdout.count("finished") == 2
    exported = subprocess.run([sys.executable, "-m", "annotune.core.cli", "export",
                               str(project_path), str(tmp_path / "bundle"), "--run",
                               str(run["id"])], capture_output=True, text=True, env=ENV,
                              timeout=LAUNCH_TIMEOUT_S)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["metrics"]["macro_f1"] == run["metrics"]["macro_f1"]


@pytest.mark.skipif(importlib.util.find_spec("accelerate") is None,
                    reason="accelerate is not installed (pip install accelerate)")
def test_accelerate_launch_trains_a_prepared_run(tmp_path, tiny_base_model):
    project_path = make_project(tmp_path / "reviews.annotune", tiny_base_model, n=40)
    with Project.open(project_path) as project:
        spec = prepare_run(project, CONFIG.with_(epochs=2), tmp_path / "run")
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu",
         "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--main_process_port", "0", *JOB, str(spec.folder)],
        capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S,
        env={**ENV, "HF_HOME": str(tmp_path / "hf")})  # no accelerate config of the machine's
    assert result.returncode == 0, result.stderr[-3000:]
    finished = events(result)[-1]
    assert finished["event"] == "finished" and finished["run_id"] is not None
    run_json = json.loads((spec.folder / "run.json").read_text())
    assert run_json["device"]["processes"] == 2
    with Project.open(project_path) as project:
        assert project.run(finished["run_id"])["status"] == "finished"


def test_one_process_trains_records_later_and_never_trains_twice(tmp_path, tiny_base_model):
    project_path = make_project(tmp_path / "reviews.annotune", tiny_base_model, n=30)
    with Project.open(project_path) as project:
        spec = prepare_run(project, CONFIG.with_(epochs=1), tmp_path / "run")

    # the project is out of reach (another machine): the run ends complete in its folder
    away = project_path.rename(tmp_path / "elsewhere.annotune")
    result = one_process(spec.folder)
    assert result.returncode == 0, result.stderr[-3000:]
    finished = events(result)[-1]
    assert finished["event"] == "finished" and finished["run_id"] is None
    assert finished["record_command"].startswith(f"annotune record-run {project_path} ")
    assert "annotune record-run" in result.stderr
    state = read_status(spec.folder)
    assert state["status"] == "finished" and state["recorded"] is None
    assert state["device_label"].startswith("cpu (") and "×" not in state["device_label"]
    assert [json.loads(line)["event"] for line in (spec.folder / "events.jsonl")
            .read_text().splitlines()][-1] == "finished"

    away.rename(project_path)
    recorded = subprocess.run([sys.executable, "-m", "annotune.core.cli", "record-run",
                               str(project_path), str(spec.folder)], capture_output=True,
                              text=True, env=ENV)
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded as run 1 (finished" in recorded.stdout

    # a recorded run is what the project points at: training it again is refused
    again = one_process(spec.folder)
    assert again.returncode == 1
    failed = events(again)[-1]
    assert failed["event"] == "failed" and "recorded as run 1" in failed["error"]
    assert (spec.folder / "model" / "config.json").is_file()


def test_a_run_folder_trained_by_another_launch_is_refused(tmp_path, tiny_base_model):
    project_path = make_project(tmp_path / "reviews.annotune", tiny_base_model, n=20)
    with Project.open(project_path) as project:
        spec = prepare_run(project, CONFIG.with_(epochs=1), tmp_path / "run")
    holder = TrainingLock(lock_path(spec.folder))
    assert holder.acquire()
    holder.describe(since="2026-01-01T00:00:00+00:00")
    try:
        result = one_process(spec.folder)
    finally:
        holder.release()
    assert result.returncode == 1
    failed = events(result)[-1]
    assert failed["event"] == "failed" and failed["busy"] is True
    assert "being trained already" in failed["error"] and f"process {os.getpid()}" in failed[
        "error"]
    assert not (spec.folder / "status.json").exists()  # the other launch's files stay its own
    assert load_spec(spec.folder).examples("train") > 0


def test_the_job_takes_a_run_folder_or_a_project_not_both(tmp_path):
    both = subprocess.run([sys.executable, *JOB, str(tmp_path), "--project", "x.annotune"],
                          capture_output=True, text=True, env=ENV)
    neither = subprocess.run([sys.executable, *JOB], capture_output=True, text=True, env=ENV)
    for result in (both, neither):
        assert result.returncode == 2 and "either a prepared RUN_DIR or --project" in (
            result.stderr)
    missing = subprocess.run([sys.executable, *JOB, str(tmp_path / "nothing")],
                             capture_output=True, text=True, env=ENV)
    assert missing.returncode == 1
    assert "does not exist" in events(missing)[-1]["error"]


def test_the_train_button_keeps_one_device_under_a_launchers_environment(tmp_path,
                                                                         tiny_base_model,
                                                                         monkeypatch):
    """A project's own training (the desktop, `annotune train`) never joins a process group,
    even started from a shell where a launcher's variables are set."""
    from annotune.core.training.job import run_training_inline

    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "9"}.items():
        monkeypatch.setenv(name, value)
    project_path = make_project(tmp_path / "reviews.annotune", tiny_base_model, n=20)
    with Project.open(project_path) as project:
        result = run_training_inline(project, CONFIG.with_(epochs=1))
    assert result.status == "finished" and (result.artifact_dir / "config.json").is_file()
    assert "processes" not in json.loads((result.out_dir / "run.json").read_text())["device"]


def test_a_worker_of_a_launcher_does_not_take_the_launcher_for_a_dead_parent(tmp_path,
                                                                             tiny_base_model):
    """torchrun's workers inherit the environment of whoever started torchrun, lifeline
    variable included; the worker's parent is torchrun's agent, not the process it names."""
    project_path = make_project(tmp_path / "reviews.annotune", tiny_base_model, n=20)
    with Project.open(project_path) as project:
        spec = prepare_run(project, CONFIG.with_(epochs=1), tmp_path / "run")
    result = subprocess.run([sys.executable, *JOB, str(spec.folder)], capture_output=True,
                            text=True, timeout=LAUNCH_TIMEOUT_S,
                            env={**ENV, "TORCHELASTIC_RUN_ID": "test",
                                 "ANNOTUNE_PARENT_PID": "1"})  # not this process's parent
    assert result.returncode == 0, result.stderr[-3000:]
    assert events(result)[-1]["event"] == "finished"
