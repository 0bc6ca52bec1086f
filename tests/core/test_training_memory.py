"""Out-of-memory adaptation: halved steps keep the maths, and the peak memory is stated."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import annotune.core.features as features_module
import annotune.core.training.loop as loop
from annotune.core.errors import AnnotuneError
from annotune.core.tasks import TaskSettings
from annotune.core.training.config import TrainConfig
from annotune.core.training.memory import BatchSizes, retry_on_oom
from annotune.plugins.text_classification import TextClassificationTask

SETTINGS = TaskSettings(labels=("neg", "pos"), max_length=32)
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def data(sentiment_items):
    return sentiment_items(48, 1), sentiment_items(24, 2)


def config(base, **changes) -> TrainConfig:
    values = dict(base_model=str(base), epochs=2, learning_rate=5e-3, batch_size=8,
                  early_stopping_patience=0, device="cpu", seed=7)
    values.update(changes)
    return TrainConfig(**values)


def fill_gpu_above(monkeypatch, rows: int, training: bool) -> list[int]:
    """Make the model raise the GPU's out-of-memory error on batches of more than ``rows``.

    The error comes after the forward pass (as a real one often does, in the backward), so
    the failed attempt has drawn its dropout masks already. Returns the sizes that failed.
    """
    failed: list[int] = []
    real_load = loop.load_model

    def load_model(*args, **kwargs):
        loaded = real_load(*args, **kwargs)

        def hook(module, args, kwargs, output):
            size = kwargs["input_ids"].shape[0]
            if module.training == training and size > rows:
                failed.append(size)
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
            return output

        loaded.model.register_forward_hook(hook, with_kwargs=True)
        return loaded

    monkeypatch.setattr(loop, "load_model", load_model)
    return failed


def train(base, data, folder, events=None, **changes):
    return loop.train(TextClassificationTask(), SETTINGS, config(base, **changes), data[0],
                      data[1], folder, (events if events is not None else []).append)


def test_halving_doubles_the_accumulation_and_says_so():
    events = []
    sizes = BatchSizes(16, 16, 64, max_length=128, emit=events.append)
    sizes.shrink("train")
    assert (sizes.micro_batch_size, sizes.gradient_accumulation) == (8, 2)
    sizes.shrink("eval")
    assert sizes.eval_batch_size == 32 and sizes.reductions == 2
    assert events[0] == {
        "event": "memory", "phase": "train", "micro_batch_size": 8, "gradient_accumulation": 2,
        "eval_batch_size": 64,
        "message": "GPU memory full at 16 examples per step: continuing with 8 per step "
                   "(same results, gradient accumulation 2)"}
    assert events[1]["phase"] == "eval" and events[1]["eval_batch_size"] == 32
    odd = BatchSizes(10, 5, 3)
    odd.shrink("train")
    assert (odd.micro_batch_size, odd.gradient_accumulation) == (2, 5)


def test_retry_redoes_the_attempt_with_the_same_random_draws():
    sizes = BatchSizes(8, 8, 8)
    draws, cleaned = [], []

    def attempt():
        draws.append(torch.rand(3))  # a dropout mask, drawn before the memory runs out
        if sizes.micro_batch_size > 2:
            raise torch.OutOfMemoryError("out of memory")
        return sizes.micro_batch_size

    assert retry_on_oom(attempt, sizes, "train", lambda: cleaned.append(1), CPU) == 2
    assert len(draws) == 3 and len(cleaned) == 2 and sizes.reductions == 2
    assert all(torch.equal(draw, draws[0]) for draw in draws)


def test_retry_lets_other_errors_through():
    sizes = BatchSizes(8, 8, 8)

    def attempt():
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        retry_on_oom(attempt, sizes, "train", lambda: None, CPU)
    assert sizes.micro_batch_size == 8


def test_training_oom_halves_the_step_and_trains_the_same_weights(tmp_path, monkeypatch,
                                                                   tiny_base_model, data):
    # the reference: a run set up with gradient accumulation 2 (4 per forward pass) from the
    # start; tiny_base_model has dropout, so the redone step must draw the same masks
    reference = train(tiny_base_model, data, tmp_path / "reference", gradient_accumulation=2)
    failed = fill_gpu_above(monkeypatch, rows=4, training=True)
    events = []
    result = train(tiny_base_model, data, tmp_path / "adapted", events)

    assert result.status == "finished" and failed == [8]
    memory = [e for e in events if e["event"] == "memory"]
    assert memory == [{"event": "memory", "phase": "train", "micro_batch_size": 4,
                       "gradient_accumulation": 2, "eval_batch_size": 64,
                       "message": "GPU memory full at 8 examples per step: continuing with 4 "
                                  "per step (same results, gradient accumulation 2)"}]
    record = json.loads((tmp_path / "adapted" / "run.json").read_text())
    assert record["memory"] == {"micro_batch_size": 4, "gradient_accumulation": 2,
                                "eval_batch_size": 64, "reductions": 1,
                                "peak_gpu_memory_gb": None}
    assert record["steps"] == 12  # the redone step is one optimizer step, not two
    progress = [e["step"] for e in events if e["event"] == "progress"]
    assert progress == sorted(set(progress)) and progress[-1] == 12

    expected = load_file(str(reference.artifact_dir / "model.safetensors"))
    trained = load_file(str(result.artifact_dir / "model.safetensors"))
    assert expected.keys() == trained.keys()
    for name, value in trained.items():
        assert torch.allclose(value, expected[name], rtol=0, atol=1e-6), name
    assert [h["train_loss"] for h in result.history] == pytest.approx(
        [h["train_loss"] for h in reference.history], abs=1e-6)


def test_oom_at_micro_batch_one_is_a_clear_error(tmp_path, monkeypatch, tiny_base_model, data):
    fill_gpu_above(monkeypatch, rows=0, training=True)
    events = []
    with pytest.raises(AnnotuneError) as caught:
        train(tiny_base_model, data, tmp_path, events)
    message = str(caught.value)
    assert "out of memory" in message and "micro-batch 1" in message
    assert "max length 32" in message and "lower max_length" in message
    assert "smaller base model" in message
    assert [e["micro_batch_size"] for e in events if e["event"] == "memory"] == [4, 2, 1]
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)


def test_evaluation_oom_halves_the_eval_batch(tmp_path, monkeypatch, tiny_base_model, data):
    # whole batches of the eval size, whatever their padding, so the halving shows plainly
    monkeypatch.setattr(features_module, "MAX_PADDING", float("inf"))
    reference = train(tiny_base_model, data, tmp_path / "reference", eval_batch_size=5)
    failed = fill_gpu_above(monkeypatch, rows=6, training=False)
    events = []
    result = train(tiny_base_model, data, tmp_path / "adapted", events, eval_batch_size=20)

    assert failed == [20, 10]  # 20 -> 10 -> 5, once: the second epoch starts at 5
    memory = [e for e in events if e["event"] == "memory"]
    assert [(e["phase"], e["eval_batch_size"], e["micro_batch_size"]) for e in memory] == [
        ("eval", 10, 8), ("eval", 5, 8)]
    assert "evaluating 20 examples at once: continuing with 10" in memory[0]["message"]
    record = json.loads((tmp_path / "adapted" / "run.json").read_text())
    assert record["memory"]["eval_batch_size"] == 5 and record["memory"]["reductions"] == 2
    assert record["memory"]["micro_batch_size"] == 8
    for adapted, expected in zip(result.history, reference.history, strict=True):
        assert adapted["metrics"] == expected["metrics"]
        assert adapted["validation_loss"] == pytest.approx(expected["validation_loss"],
                                                           abs=1e-6)


def test_peak_gpu_memory_is_stated_and_none_on_the_cpu(tmp_path, tiny_base_model, data):
    events = []
    train(tiny_base_model, data, tmp_path, events, epochs=1)
    metrics = [e for e in events if e["event"] == "metrics"]
    assert metrics and all("peak_gpu_memory_gb" in e and e["peak_gpu_memory_gb"] is None
                           for e in metrics)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["memory"]["peak_gpu_memory_gb"] is None
    assert record["history"][0]["peak_gpu_memory_gb"] is None
    assert record["memory"]["micro_batch_size"] == 8 and record["memory"]["reductions"] == 0
