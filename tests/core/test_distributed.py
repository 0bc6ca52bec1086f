"""Several processes, without starting any: each process's share of a batch and its weight,
the run spec and its data snapshot, and recording a spec's run in its project."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.store.training_lock import TrainingLock
from annotune.core.tasks import TaskSettings
from annotune.core.training import distributed
from annotune.core.training.config import TrainConfig
from annotune.core.training.data import bucketed_batches
from annotune.core.training.job import prepare_run, training_split
from annotune.core.training.spec import load_spec, write_spec
from annotune.core.training.spec_record import (
    lock_path,
    read_status,
    record_in_project,
    write_status,
)

# Texts as users have them, and the characters a line-based file must not cut at: CRLF and
# a lone CR inside a text, U+2028 (line separator), U+0085 (next line), a form feed
TEXTS = ("great pizza 🍕", "awful 👨‍👩‍👧 trip", "很好 movie", "Jose\u0301 was bad",
         "שלום good", "مرحبا bad", "line one\r\nline two", "old mac\rline",
         "split\u2028here", "next\u0085line", "page\x0cbreak")


def _ranks(world_size: int) -> list[distributed.DistributedRanks]:
    """The processes of a launch as the loop sees them (no process group is needed to share)."""
    return [distributed.DistributedRanks(world_size, rank, rank, 1, "gloo", None, 42, None)
            for rank in range(world_size)]


# -- each process's share of a batch ---------------------------------------------------------

@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_every_process_trains_a_distinct_shard_with_the_same_number_of_steps(world_size):
    rng = random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(203)]
    batches = bucketed_batches(lengths, 16, seed=42, epoch=3)
    shards = [[ranks.share(batch)[0] for batch in batches] for ranks in _ranks(world_size)]
    assert all(len(shard) == len(batches) for shard in shards)  # one share per optimizer step
    for step, batch in enumerate(batches):
        pieces = [shard[step] for shard in shards]
        seen = [index for piece in pieces for index in piece]
        assert sorted(seen) == sorted(batch)  # each feature once, by exactly one process
        # the pieces of one step come from one length bucket: nobody waits for long texts
        longest = [max(lengths[i] for i in piece) for piece in pieces]
        assert max(longest) - min(longest) <= max(lengths[i] for i in batch) - min(
            lengths[i] for i in batch)
    epoch = [index for shard in shards for piece in shard for index in piece]
    assert sorted(epoch) == list(range(len(lengths)))  # the whole epoch, nothing twice


def test_a_batch_smaller_than_the_processes_gives_the_others_a_zero_weight_pass():
    shares = [ranks.share([7, 9]) for ranks in _ranks(3)]
    assert shares[0] == ([7], 3.0) and shares[1] == ([9], 3.0)
    assert shares[2] == ([7], 0.0)  # joins the gradient all-reduce, adds nothing


@pytest.mark.parametrize(("world_size", "batch", "micro"), [(2, 7, 16), (3, 5, 16), (3, 2, 16),
                                                            (2, 9, 2)])
def test_the_weighted_shares_average_to_the_gradient_of_the_whole_batch(world_size, batch,
                                                                        micro):
    """DDP averages the processes' gradients; the loop's weights make that the batch mean."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    x, y = torch.randn(batch, 5), torch.randint(0, 3, (batch,))
    indices = list(range(batch))

    def gradient(pieces_and_weights):
        model.zero_grad()
        for piece, weight in pieces_and_weights:
            loss = torch.nn.functional.cross_entropy(model(x[piece]), y[piece])
            (loss * (len(piece) / batch * weight)).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    whole = gradient([(indices, 1.0)])
    per_process = []
    for ranks in _ranks(world_size):
        mine, weight = ranks.share(indices)
        pieces = [(mine[s:s + micro], weight) for s in range(0, len(mine), micro)]
        per_process.append(gradient(pieces))
    averaged = torch.stack(per_process).mean(0)  # what DDP's all-reduce leaves on every rank
    assert torch.allclose(averaged, whole, atol=1e-6)


def test_one_process_is_the_loop_unchanged():
    ranks = distributed.Ranks()
    assert ranks.share([3, 1, 2]) == ([3, 1, 2], 1.0)
    assert ranks.describe() == {} and ranks.is_main and ranks.world_size == 1

    def stop():
        return False

    assert ranks.agreed(stop) is stop


def test_a_launch_that_cannot_train_says_why_before_joining(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "1")
    for name in ("LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AnnotuneError, match="MASTER_ADDR.*not set.*torchrun"):
        distributed.start(TrainConfig(device="cpu"))
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29999")
    with pytest.raises(AnnotuneError, match="batch_size 2 is smaller than the 4 processes"):
        distributed.start(TrainConfig(device="cpu", batch_size=2))
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(AnnotuneError, match="WORLD_SIZE='two' is not a whole number"):
        distributed.start(TrainConfig(device="cpu"))


def test_the_collective_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(distributed.TIMEOUT_ENV, raising=False)
    assert distributed.timeout_s() == distributed.DEFAULT_TIMEOUT_S
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "45")
    assert distributed.timeout_s() == 45.0
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "0")
    with pytest.raises(AnnotuneError, match="not a positive number"):
        distributed.timeout_s()


# -- the run spec and its data snapshot ------------------------------------------------------

def _records(n: int) -> list[ImportRecord]:
    out = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        text = f"{TEXTS[i % len(TEXTS)]} {'good' if label == 'pos' else 'bad'} n{i}"
        out.append(ImportRecord(fields={"text": text}, annotation={"label": label}, line=i + 1))
    return out


@pytest.fixture
def project_path(tmp_path) -> Path:
    path = tmp_path / "reviews.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"), max_length=32),
                        base_model="some/hub-model") as project:
        project.add_examples(_records(44), source="train.csv")
    return path


CONFIG = TrainConfig(epochs=2, batch_size=8, device="cpu", seed=3)


def test_a_prepared_run_holds_exactly_the_split_a_run_would_train_on(project_path, tmp_path):
    with Project.open(project_path) as project:
        spec = prepare_run(project, CONFIG, tmp_path / "run")
        expected = training_split(project, CONFIG.with_(base_model="some/hub-model"))
    assert spec.config.base_model == "some/hub-model"  # the project's, frozen into the spec
    assert spec.config.batch_size == 8 and spec.config.seed == 3
    assert spec.project_path == str(project_path.resolve())
    loaded = load_spec(tmp_path / "run")
    train, validation = loaded.items("train"), loaded.items("validation")
    # every text comes back exactly, whatever line breaks and separators it holds
    assert (train, validation) == ([(dict(f), a) for f, a in expected.train],
                                   [(dict(f), a) for f, a in expected.validation])
    assert {f["text"].split(" ")[0] for f, _ in train + validation} >= {"great", "很好"}
    assert any("\u2028" in f["text"] for f, _ in train + validation)
    assert (loaded.examples("train"), loaded.examples("validation")) == (len(train),
                                                                         len(validation))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_damaged_copy_of_the_data_fails_with_the_file_and_what_to_do(project_path, tmp_path):
    with Project.open(project_path) as project:
        prepare_run(project, CONFIG, tmp_path / "run")
    data = tmp_path / "run" / "data" / "train.jsonl"
    original = data.read_bytes()
    data.write_bytes(original[: len(original) // 2])  # a copy cut short
    with pytest.raises(AnnotuneError) as cut:
        load_spec(tmp_path / "run").items("train")
    assert str(data) in str(cut.value) and "copy the whole run folder again" in str(cut.value)
    # one label changed, same length: the checksum still tells
    data.write_bytes(original.replace(b'"label": "pos"', b'"label": "neg"', 1))
    with pytest.raises(AnnotuneError, match="not the snapshot that was prepared"):
        load_spec(tmp_path / "run").items("train")


def test_a_run_folder_that_is_not_empty_is_refused_and_left_alone(project_path, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with Project.open(project_path) as project, pytest.raises(AnnotuneError,
                                                              match="not empty"):
        prepare_run(project, CONFIG, folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with Project.open(project_path) as project:
        assert prepare_run(project, CONFIG, empty).folder == empty.resolve()


def test_a_spec_that_is_not_one_says_where_and_what_to_do(tmp_path):
    with pytest.raises(AnnotuneError, match="holds no prepared run.*--prepare-only"):
        load_spec(tmp_path)
    spec = write_spec(tmp_path / "run", "text-classification", TaskSettings(labels=("a", "b")),
                      CONFIG, [({"text": "x"}, {"label": "a"})], [({"text": "y"},
                                                                    {"label": "b"})])
    path = spec.folder / "spec.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "format": 99}))
    with pytest.raises(AnnotuneError, match="newer annotune"):
        load_spec(spec.folder)
    path.write_text(json.dumps({**record, "config": {**record["config"], "batch_size": 0}}))
    with pytest.raises(AnnotuneError) as bad:
        load_spec(spec.folder)
    assert "batch_size=0" in str(bad.value) and str(path) in str(bad.value)
    escaping = {**record["data"]["train"], "file": "../../secret.jsonl"}
    path.write_text(json.dumps({**record, "data": {**record["data"], "train": escaping}}))
    with pytest.raises(AnnotuneError, match="outside the run folder"):
        load_spec(spec.folder)
    path.write_text("{ not json")
    with pytest.raises(AnnotuneError, match=r"spec.json:1: spec.json is not valid JSON"):
        load_spec(spec.folder)


# -- recording a spec's run in its project ---------------------------------------------------

def _ended(spec, status="finished", **changes):
    """Leave in the run folder what rank 0 leaves at the end of a run."""
    model = spec.folder / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    state = {"status": status, "spec_id": spec.id, "started_at": "2026-01-02T03:04:05+00:00",
             "ended_at": "2026-01-02T03:05:05+00:00", "duration_s": 60.0, "pid": 1,
             "host": "here", "processes": 2, "machines": 1,
             "device_label": "cuda (2 × NVIDIA H100, fp32)", "best_epoch": 2,
             "metrics": {"f1": 0.75}, "error": None, "artifact_dir": "model",
             "epochs": [{"epoch": 1, "metrics": {"f1": 0.5, "train_loss": 0.6},
                         "created": "2026-01-02T03:04:35+00:00"},
                        {"epoch": 2, "metrics": {"f1": 0.75, "train_loss": 0.4},
                         "created": "2026-01-02T03:05:04+00:00"}], "recorded": None}
    write_status(spec.folder, {**state, **changes})


def test_a_spec_run_is_recorded_once_like_any_run(project_path, tmp_path):
    with Project.open(project_path) as project:
        spec = prepare_run(project, CONFIG, tmp_path / "run")
        with pytest.raises(AnnotuneError, match="not been trained yet"):
            record_in_project(project, spec.folder)
        _ended(spec)
        run_id, added = record_in_project(project, spec.folder)
        assert added
        assert record_in_project(project, spec.folder) == (run_id, False)  # never twice
        run = project.run(run_id)
        assert [r["id"] for r in project.runs()] == [run_id]
    assert run["status"] == "finished" and run["metrics"] == {"f1": 0.75}
    assert run["artifact_dir"] == str(spec.folder / "model")
    assert run["device"] == "cuda (2 × NVIDIA H100, fp32)" and run["duration_s"] == 60.0
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    assert run["config"]["batch_size"] == 8 and run["config"]["run_spec"]["id"] == spec.id
    assert run["config"]["run_spec"]["processes"] == 2
    assert read_status(spec.folder)["recorded"] == {"project": str(project_path),
                                                    "run_id": run_id}


def test_a_run_from_another_project_is_refused(project_path, tmp_path):
    other = tmp_path / "other.annotune"
    Project.create(other, task="text-classification",
                   settings=TaskSettings(labels=("neg", "pos"))).close()
    with Project.open(project_path) as project:
        spec = prepare_run(project, CONFIG, tmp_path / "run")
    _ended(spec)
    with Project.open(other) as project:
        with pytest.raises(AnnotuneError, match="prepared from another project"):
            record_in_project(project, spec.folder)
        assert project.runs() == []


def test_a_run_still_training_is_refused_and_one_whose_process_died_is_failed(project_path,
                                                                              tmp_path):
    import socket

    with Project.open(project_path) as project:
        spec = prepare_run(project, CONFIG, tmp_path / "run")
        _ended(spec, status="running", host=socket.gethostname(), metrics=None)
        lock = TrainingLock(lock_path(spec.folder))
        assert lock.acquire()
        try:
            with pytest.raises(AnnotuneError, match="still training"):
                record_in_project(project, spec.folder)
        finally:
            lock.release()
        run_id, added = record_in_project(project, spec.folder)  # nobody holds the lock now
        run = project.run(run_id)
    assert added and run["status"] == "failed" and "killed or crashed" in run["error"]
    assert run["artifact_dir"] is None  # a run killed on its way keeps no checkpoint


def test_the_command_line_prepares_and_records(project_path, tmp_path):
    def annotune(*args):
        return subprocess.run([sys.executable, "-m", "annotune.core.cli", *map(str, args)],
                              capture_output=True, text=True, timeout=300)

    folder = tmp_path / "my runs" / "run 1"  # a path with spaces, as people's folders have
    prepared = annotune("train", project_path, "--prepare-only", folder, "--epochs", "3",
                        "--batch-size", "12", "--device", "cpu")
    assert prepared.returncode == 0, prepared.stderr
    assert "torchrun --nproc-per-node N -m annotune.core.training.job" in prepared.stdout
    assert f"'{folder}'" in prepared.stdout  # quoted for the shell
    spec = load_spec(folder)
    assert (spec.config.epochs, spec.config.batch_size) == (3, 12)
    again = annotune("train", project_path, "--prepare-only", folder)
    assert again.returncode == 1 and "not empty" in again.stderr
    _ended(spec)
    recorded = annotune("record-run", project_path, folder)
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded as run 1 (finished, f1 0.7500)" in recorded.stdout
    listed = annotune("runs", project_path)
    assert "finished" in listed.stdout and "0.7500" in listed.stdout
    twice = annotune("record-run", project_path, folder)
    assert twice.returncode == 0 and "was recorded already as run 1" in twice.stdout


def test_seeds_and_data_make_every_process_build_the_same_batches():
    lengths = np.random.default_rng(1).integers(3, 60, 100).tolist()
    assert bucketed_batches(lengths, 8, 42, 2) == bucketed_batches(lengths, 8, 42, 2)


def test_a_runs_validation_texts_come_back_whole_for_the_export(tmp_path):
    """The export scores a run on its validation.jsonl: a text holding U+2028 or U+0085 must
    stay one example (str.splitlines cut it in two, and the export refused the run)."""
    from annotune.core.plugins import registry
    from annotune.core.training.validation_file import read_validation, write_validation

    fields = [{"text": text} for text in TEXTS]
    write_validation(tmp_path, fields, [{"label": "pos"}] * len(TEXTS))
    read = read_validation(tmp_path, registry().task("text-classification"))
    assert read.examples == fields and read.total == len(TEXTS)
