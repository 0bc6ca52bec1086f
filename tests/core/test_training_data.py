"""Training data and options: stratified split, length buckets, tensors, config, device."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

import annotune.core.training.device as device_module
from annotune.core.errors import AnnotuneError
from annotune.core.training.config import TrainConfig
from annotune.core.training.data import (
    BUCKET_BATCHES,
    bucketed_batches,
    split_validation,
    to_device,
)
from annotune.core.training.device import choose_device, describe_device, pick_precision
from annotune.core.training.model import base_model_width
from annotune.plugins.text_classification import TextClassificationTask

TASK = TextClassificationTask()


def items(counts: dict[str, int]) -> list[tuple[dict, dict]]:
    out = []
    for label, n in counts.items():
        out.extend(({"text": f"{label} {i}"}, {"label": label}) for i in range(n))
    return out


def test_split_is_stratified_by_label():
    data = items({"a": 100, "b": 30, "c": 10})
    train, validation = split_validation(data, TASK, 0.1, seed=0)
    assert Counter(a["label"] for _, a in validation) == {"a": 10, "b": 3, "c": 1}
    assert len(train) + len(validation) == len(data)
    assert {f["text"] for f, _ in train}.isdisjoint(f["text"] for f, _ in validation)


def test_split_keeps_rare_labels_on_both_sides():
    train, validation = split_validation(items({"a": 50, "rare": 2, "single": 1}), TASK, 0.1, 0)
    held = Counter(a["label"] for _, a in validation)
    kept = Counter(a["label"] for _, a in train)
    assert held["rare"] == 1 and kept["rare"] == 1
    assert held["single"] == 0 and kept["single"] == 1  # one example: it must train


def test_split_is_seeded():
    data = items({"a": 40, "b": 40})
    first = split_validation(data, TASK, 0.2, seed=5)[1]
    assert first == split_validation(data, TASK, 0.2, seed=5)[1]
    assert first != split_validation(data, TASK, 0.2, seed=6)[1]


def test_split_of_singletons_still_validates_on_one():
    train, validation = split_validation(items({"a": 1, "b": 1, "c": 1}), TASK, 0.1, 0)
    assert (len(train), len(validation)) == (2, 1)


def test_split_needs_two_examples():
    with pytest.raises(AnnotuneError, match="at least 2 labeled examples"):
        split_validation(items({"a": 1}), TASK, 0.1, 0)


def test_buckets_cover_every_index_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, size=1000).tolist()
    batches = bucketed_batches(lengths, 16, seed=1, epoch=1)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    assert all(len(b) == 16 for b in batches if len(b) != 1000 % 16)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    random_order = [list(range(s, min(s + 16, 1000))) for s in range(0, 1000, 16)]
    padded_random = sum(len(b) * max(lengths[i] for i in b) for b in random_order)
    assert padded < 0.7 * padded_random  # buckets waste far less compute on padding


def test_bucket_order_is_seeded_and_changes_every_epoch():
    lengths = list(range(400))
    first = bucketed_batches(lengths, 8, seed=1, epoch=1)
    assert first == bucketed_batches(lengths, 8, seed=1, epoch=1)
    assert first != bucketed_batches(lengths, 8, seed=1, epoch=2)
    assert first != bucketed_batches(lengths, 8, seed=2, epoch=1)
    # batch order is shuffled, not sorted by length
    means = [np.mean([lengths[i] for i in b]) for b in first]
    assert means != sorted(means)


def test_buckets_mix_the_data_set_beyond_one_window():
    lengths = [10] * (16 * BUCKET_BATCHES * 3)
    batches = bucketed_batches(lengths, 16, seed=0, epoch=1)
    # equal lengths: batches are random draws, not consecutive runs of indices
    assert any(max(b) - min(b) > 16 for b in batches)


def test_to_device_makes_tensors_and_drops_unknown_inputs():
    arrays = {"input_ids": np.array([[1, 2]], dtype=np.int64),
              "token_type_ids": np.zeros((1, 2), dtype=np.int64),
              "labels": np.array([1])}
    tensors = to_device(arrays, torch.device("cpu"), keep={"input_ids", "labels"})
    assert set(tensors) == {"input_ids", "labels"}
    assert tensors["input_ids"].dtype == torch.int64 and tensors["input_ids"].tolist() == [[1, 2]]


def test_config_round_trip_ignores_unknown_keys():
    config = TrainConfig(epochs=3, learning_rate=3e-5, compile=True, base_model="/models/x")
    data = config.to_dict()
    assert TrainConfig.from_dict({**data, "option_from_the_future": 1}) == config
    assert TrainConfig.from_dict({}) == TrainConfig()
    assert TrainConfig.from_dict({"compile": "false"}).compile is False


def test_defaults_beat_the_plain_glue_recipe_for_small_models():
    config = TrainConfig()
    assert 5e-5 <= config.learning_rate <= 1e-4
    assert config.warmup_ratio > 0 and config.epochs > 3 and config.early_stopping_patience > 0
    assert config.base_model is None and config.device == "auto" and config.precision == "auto"


@pytest.mark.parametrize("change, name", [
    ({"epochs": 0}, "epochs"), ({"learning_rate": 0}, "learning_rate"),
    ({"warmup_ratio": 1.0}, "warmup_ratio"), ({"validation_fraction": 0}, "validation_fraction"),
    ({"device": "tpu"}, "device"), ({"precision": "int8"}, "precision"),
    ({"max_length": 2}, "max_length"), ({"early_stopping_patience": -1},
                                        "early_stopping_patience"),
])
def test_impossible_options_name_themselves(change, name):
    with pytest.raises(AnnotuneError, match=name):
        TrainConfig(**change)


def test_micro_batches_split_the_batch():
    assert TrainConfig(batch_size=16, gradient_accumulation=4).micro_batch_size == 4
    assert TrainConfig(batch_size=10, gradient_accumulation=4).micro_batch_size == 3


def test_cpu_device_and_precision(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: False)  # bf16 CPUs: measured
    assert choose_device(TrainConfig(device="cpu")).type == "cpu"
    assert pick_precision(torch.device("cpu")) == "fp32"
    assert pick_precision(torch.device("cpu"), "bf16") == "bf16"
    with pytest.raises(AnnotuneError, match="fp16"):
        pick_precision(torch.device("cpu"), "fp16")
    info = describe_device(TrainConfig(device="cpu"))
    assert info["device"] == "cpu" and info["precision"] == "fp32" and info["name"]
    assert info["memory_gb"] > 0


@pytest.mark.parametrize("bf16_ok, width, expected", [
    (True, 384, "fp32"), (True, 768, "fp32"), (True, None, "fp32"), (False, 1024, "fp16"),
    (False, None, "fp16"), (False, 256, "fp32"),
])
def test_auto_precision_on_cuda(monkeypatch, bf16_ok, width, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16_ok)
    assert pick_precision(torch.device("cuda"), "auto", width) == expected


def test_explicit_precision_on_cuda_is_kept_or_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "Tesla T4")
    assert pick_precision(torch.device("cuda"), "fp16", 384) == "fp16"
    assert pick_precision(torch.device("cuda"), "fp32", 1024) == "fp32"
    with pytest.raises(AnnotuneError, match=r"Tesla T4\).*bf16"):
        pick_precision(torch.device("cuda"), "bf16", 1024)


def test_base_model_width_reads_local_config(tmp_path, bundled_model_dir):
    assert base_model_width(None) == 384  # the bundled all-MiniLM-L6-v2
    (tmp_path / "config.json").write_text('{"dim": 768}')
    assert base_model_width(str(tmp_path)) == 768
    assert base_model_width("someone/hub-model") is None


def test_auto_device_follows_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device(TrainConfig()).type == expected
    if not torch.cuda.is_available():
        with pytest.raises(AnnotuneError, match="no CUDA GPU"):
            choose_device(TrainConfig(device="cuda"))
