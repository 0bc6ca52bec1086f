"""The training job: the child process end to end, its events, the store record, stopping."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings
from annotune.core.training import job
from annotune.core.training.config import TrainConfig
from annotune.core.training.job import TrainingProcess, labeled_data, run_training_inline

POSITIVE = ("good", "great", "excellent")
NEGATIVE = ("bad", "awful", "terrible")
FILLER = ("the", "film", "plot", "was", "really", "story", "and", "it")


def records(n: int, seed: int = 0, split: str | None = None) -> list[ImportRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 8))]
        words.append(rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        words.append(f"n{seed}x{i}")  # keeps every text unique (the store drops duplicates)
        out.append(ImportRecord(fields={"text": " ".join(words)}, annotation={"label": label},
                                split=split, line=i + 1))
    return out


@pytest.fixture
def project_path(tmp_path, tiny_base_model) -> Path:
    path = tmp_path / "reviews.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"), max_length=32),
                        base_model=str(tiny_base_model)) as project:
        project.add_examples(records(40), source="train.csv")
    return path


# One CPU thread per training process: on a busy two-core machine two threads of a tiny model
# spend most of their time waiting for each other.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CONFIG = TrainConfig(epochs=2, learning_rate=5e-3, batch_size=8, device="cpu",
                     early_stopping_patience=0)


def test_job_trains_and_records_the_run(project_path):
    process = TrainingProcess()
    process.start(project_path, CONFIG, env=ONE_THREAD)
    events = list(process.events())
    assert process.wait() == job.EXIT_FINISHED
    assert not process.log_path.exists()  # a clean run leaves no stderr log behind

    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished", kinds
    assert set(kinds) == {"started", "progress", "metrics", "finished"}
    assert [e["epoch"] for e in events if e["event"] == "metrics"] == [1, 2]
    first_metrics = kinds.index("metrics")
    assert "progress" in kinds[1:first_metrics]  # training steps come before the evaluation
    progress = [e for e in events if e["event"] == "progress"]
    assert {"step", "total_steps", "epoch", "loss", "eta_s", "samples_per_s"} <= set(progress[0])
    assert progress[-1]["step"] == progress[-1]["total_steps"] == 2 * 5  # 36 train / 8 per step

    started, finished = events[0], events[-1]
    assert started["device"]["device"] == "cpu" and started["device_label"].startswith("cpu (")
    assert (started["train_examples"], started["validation_examples"]) == (36, 4)
    run_id = started["run_id"]
    assert finished["run_id"] == run_id and "f1" in finished["metrics"]
    artifact = Path(finished["artifact_dir"])
    assert (artifact / "config.json").is_file() and (artifact / "tokenizer.json").is_file()
    assert json.loads((artifact.parent / "run.json").read_text())["status"] == "finished"

    with Project.open(project_path) as project:
        run = project.run(run_id)
        assert run["status"] == "finished" and run["artifact_dir"] == str(artifact)
        assert run["metrics"]["f1"] == finished["metrics"]["f1"]
        assert [e["epoch"] for e in run["epochs"]] == [1, 2]
        assert "train_loss" in run["epochs"][0]["metrics"]
        assert run["config"]["epochs"] == 2 and run["device"].startswith("cpu")
        assert artifact.parent == project.runs_dir / str(run_id)


def test_stop_cancels_the_job_and_records_it(project_path):
    process = TrainingProcess()
    process.start(project_path, CONFIG.with_(epochs=500), env=ONE_THREAD)
    seen = []
    for event in process.events():
        seen.append(event)
        if event["event"] == "progress":
            process.stop(timeout=60)
    assert seen[-1]["event"] == "cancelled" and not seen[-1].get("forced")
    assert process.wait() == job.EXIT_CANCELLED
    with Project.open(project_path) as project:
        run = project.run(seen[0]["run_id"])
    assert run["status"] == "cancelled"
    assert len(run["epochs"]) < 500


def test_a_job_that_dies_without_a_word_is_reported_failed(project_path, tmp_path):
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho 'segmentation fault' >&2\nexit 139\n")
    fake_python.chmod(0o755)
    process = TrainingProcess(python=str(fake_python))
    process.start(project_path, CONFIG)
    events = list(process.events())
    assert [e["event"] for e in events] == ["failed"]
    assert "exit code 139" in events[0]["error"] and "segmentation fault" in events[0]["error"]


def test_a_job_that_ignores_stop_is_killed(project_path, tmp_path):
    stubborn = tmp_path / "python"
    stubborn.write_text("#!/bin/sh\ntrap '' INT TERM\necho '{\"event\": \"started\"}'\n"
                        "sleep 60\n")
    stubborn.chmod(0o755)
    process = TrainingProcess(python=str(stubborn))
    process.start(project_path, CONFIG)
    events = process.events()
    assert next(events)["event"] == "started"
    process.stop(timeout=1)
    assert not process.running
    assert list(events) == [{"event": "cancelled", "run_id": None, "forced": True}]


def test_examples_split_decides_train_and_validation(project_path):
    with Project.open(project_path) as project:
        project.add_examples(records(10, seed=1, split="validation"), source="dev.csv")
        project.add_examples(records(6, seed=2, split="test"), source="test.csv")
        train, validation = labeled_data(project)
        assert (len(train), len(validation)) == (40, 10)
        events = []
        result = run_training_inline(project, CONFIG.with_(epochs=1), events.append)
        record = json.loads((result.out_dir / "run.json").read_text())
        assert (record["train_examples"], record["validation_examples"]) == (40, 10)
        assert sum(label["support"] for label in result.metrics["per_label"].values()) == 10
        assert project.run(events[0]["run_id"])["status"] == "finished"


def test_unavailable_hub_model_fails_with_a_clear_message(project_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    events = []
    with Project.open(project_path) as project, pytest.raises(AnnotuneError):
        run_training_inline(project, CONFIG.with_(base_model="fake-owner/fake-model-2718"),
                            events.append)
    failed = events[-1]
    assert failed["event"] == "failed" and failed["log"] is None
    assert "fake-owner/fake-model-2718" in failed["error"] and "offline" in failed["error"]
    with Project.open(project_path) as project:
        run = project.run(failed["run_id"])
    assert run["status"] == "failed" and "offline" in run["error"]


def test_unexpected_errors_leave_a_traceback_log(project_path, monkeypatch):
    def broken_train(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr("annotune.core.training.loop.train", broken_train)
    events = []
    with Project.open(project_path) as project, pytest.raises(RuntimeError):
        run_training_inline(project, CONFIG, events.append)
    failed = events[-1]
    assert failed["event"] == "failed" and "device-side assert" in failed["error"]
    log = Path(failed["log"])
    assert "Traceback" in log.read_text() and log.parent.name == str(failed["run_id"])
    with Project.open(project_path) as project:
        assert project.run(failed["run_id"])["status"] == "failed"


def test_project_without_labels_is_refused(tmp_path):
    path = tmp_path / "empty.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("a", "b"))) as project:
        events = []
        with pytest.raises(AnnotuneError, match="no labeled examples"):
            run_training_inline(project, CONFIG, events.append)
        assert events == [{"event": "failed", "run_id": None, "log": None,
                           "error": events[0]["error"]}]
        assert project.runs() == []


def test_config_argument_is_json_or_a_file(tmp_path):
    assert job._read_config('{"epochs": 3, "future_option": 1}').epochs == 3
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"batch_size": 4}))
    assert job._read_config(str(file)).batch_size == 4
    with pytest.raises(AnnotuneError, match="not valid JSON"):
        job._read_config("{epochs: 3")


def test_the_parent_side_imports_no_torch():
    code = ("import sys, annotune.core.training.job, annotune.core.training.config; "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
