"""Precision per device and input shape: the probe picks the faster, and changes nothing else."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

import annotune.core.training.device as device_module
import annotune.core.training.loop as loop
import annotune.core.training.precision as precision
from annotune.core.tasks import TaskSettings
from annotune.core.training.config import TrainConfig
from annotune.core.training.device import (
    describe_device,
    device_label,
    half_precision,
    measures_precision,
)
from annotune.core.training.memory import BatchSizes
from annotune.core.training.precision import (
    choose_precision,
    measure_precision,
    probe,
    probe_batch,
    probe_message,
)
from annotune.plugins.text_classification import TextClassificationTask

SETTINGS = TaskSettings(labels=("neg", "pos"), max_length=32)
CPU = torch.device("cpu")


class FakeGpu:
    """A clock that advances by each precision's step time, and counts the waits for it."""

    def __init__(self, ms: dict[str, list[float] | float]):
        self.ms = ms
        self.now = 0.0
        self.calls: dict[str, int] = {}
        self.syncs = 0

    def step(self, name: str) -> None:
        cost = self.ms[name]
        n = self.calls.get(name, 0)
        self.calls[name] = n + 1
        self.now += (cost[min(n, len(cost) - 1)] if isinstance(cost, list) else cost) / 1000

    def clock(self) -> float:
        return self.now

    def sync(self) -> None:
        self.syncs += 1


def run_probe(ms, **kwargs):
    gpu = FakeGpu(ms)
    kwargs.setdefault("candidates", tuple(ms))
    choice, timings = probe(gpu.step, clock=gpu.clock, sync=gpu.sync, **kwargs)
    return choice, timings, gpu


def test_probe_picks_a_clearly_faster_half_precision():
    choice, timings, gpu = run_probe({"fp32": 20.0, "bf16": 10.0})
    assert choice == "bf16" and timings == {"fp32": 20.0, "bf16": 10.0}
    assert gpu.calls == {"fp32": 2 + 5, "bf16": 2 + 5}  # warm-up, then timed steps
    assert gpu.syncs == 2 * 5 * 2  # before and after every timed step


def test_probe_never_picks_a_slower_half_precision():
    choice, timings, _ = run_probe({"fp32": 10.0, "bf16": 21.0})
    assert choice == "fp32" and timings["bf16"] > timings["fp32"]
    choice, _, _ = run_probe({"fp32": 10.0, "fp16": 10.0}, margin=0.0)
    assert choice == "fp32"  # a tie keeps fp32
    choice, _, _ = run_probe({"fp32": 10.0, "bf16": 10.5}, margin=-0.5)
    assert choice == "fp32"  # a negative margin cannot make a slower one win


@pytest.mark.parametrize("half_ms, margin, expected", [
    (9.7, 0.05, "fp32"),  # 3% faster: within the margin, fp32 stays
    (9.0, 0.05, "bf16"),  # 10% faster
    (9.7, 0.0, "bf16"),
    (9.0, 0.2, "fp32"),
])
def test_probe_respects_the_margin(half_ms, margin, expected):
    choice, _, _ = run_probe({"fp32": 10.0, "bf16": half_ms}, margin=margin)
    assert choice == expected


def test_probe_ignores_warm_up_and_a_single_slow_step():
    # bf16's first steps pick kernels (slow); one timed fp32 step is hit by a neighbour
    choice, timings, _ = run_probe({"fp32": [10.0, 10.0, 10.0, 90.0, 10.0],
                                    "bf16": [500.0, 500.0, 6.0]})
    assert choice == "bf16" and timings == {"fp32": 10.0, "bf16": 6.0}


def test_probe_batch_is_a_long_full_batch_but_not_the_longest():
    lengths = list(range(10, 110))  # index i has length i + 10
    batches = [list(range(start, start + 10)) for start in range(0, 100, 10)]
    batches.append([99, 98])  # a short last batch of a bucket: not representative
    piece = probe_batch(lengths, batches, 4)
    assert piece == [99, 98, 97, 96]  # the 90th-percentile batch (10 batches: the 10th)
    batches = [list(range(start, start + 10)) for start in range(0, 100, 10)] * 2
    assert probe_batch(lengths, batches[:20], 10) == list(range(99, 89, -1))
    assert max(lengths[i] for i in probe_batch(lengths, batches[:5], 3)) == 59


@pytest.fixture(scope="module")
def tiny_classifier(tiny_base_model):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(tiny_base_model, num_labels=2)


def test_measure_precision_leaves_the_model_and_the_random_draws_as_they_were(
        tiny_classifier):
    model = tiny_classifier.eval()
    inputs = {"input_ids": torch.randint(1000, 2000, (4, 12)),
              "attention_mask": torch.ones(4, 12, dtype=torch.long),
              "labels": torch.tensor([0, 1, 0, 1])}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(11)
    expected = torch.rand(5)
    torch.manual_seed(11)
    choice, timings = measure_precision(model, inputs, CPU, "bf16")
    assert torch.equal(torch.rand(5), expected)  # dropout in the probe drew nothing for good
    assert choice in ("fp32", "bf16") and set(timings) == {"fp32", "bf16"}
    assert all(ms > 0 for ms in timings.values())
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_probe_that_runs_out_of_memory_halves_the_micro_batch(monkeypatch):
    def measure(model, inputs, device, half):
        if len(inputs["rows"]) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return "fp16", {"fp32": 30.0, "fp16": 20.0}

    monkeypatch.setattr(precision, "measure_precision", measure)
    events = []
    sizes = BatchSizes(8, 8, 16, emit=events.append)
    model = torch.nn.Linear(2, 2)
    lengths = [5, 9, 7, 3, 8, 6, 4, 2]
    choice, record = choose_precision(model, lengths, [list(range(8))],
                                      lambda piece: {"rows": piece}, sizes, CPU)
    assert choice == "fp16" and sizes.micro_batch_size == 2
    assert [e["micro_batch_size"] for e in events] == [4, 2]
    assert record == {"fp32_ms": 30.0, "fp16_ms": 20.0, "length": 9, "batch": 2,
                      "chosen": "fp16", "device": "cpu"}
    assert probe_message(record) == ("fp16 ran 1.50x the speed of fp32 on 2 x 9-token steps: "
                                     "training in fp16")


@pytest.fixture(scope="module")
def data(sentiment_items):
    return sentiment_items(32, 1), sentiment_items(12, 2)


def train(base, folder, data, events=None, **changes):
    values = dict(base_model=str(base), epochs=2, learning_rate=5e-3, batch_size=8,
                  early_stopping_patience=0, device="cpu", seed=7)
    values.update(changes)
    return loop.train(TextClassificationTask(), SETTINGS, TrainConfig(**values), *data,
                      folder, (events if events is not None else []).append)


def test_a_run_with_the_probe_trains_the_same_weights_as_one_without(
        tmp_path, monkeypatch, tiny_base_model, data):
    plain = train(tiny_base_model, tmp_path / "plain", data)
    assert "precision_probe" not in json.loads((tmp_path / "plain" / "run.json").read_text())[
        "device"]

    # force the probe on the CPU; a margin of 100% keeps fp32 whatever the timings are
    monkeypatch.setattr(loop, "measures_precision", lambda device, requested, width=None: True)
    monkeypatch.setattr(precision, "MARGIN", 1.0)
    events = []
    probed = train(tiny_base_model, tmp_path / "probed", data, events)

    record = json.loads((tmp_path / "probed" / "run.json").read_text())
    probe_figures = record["device"]["precision_probe"]
    assert record["device"]["precision"] == "fp32" and probe_figures["chosen"] == "fp32"
    assert set(probe_figures) == {"fp32_ms", "bf16_ms", "length", "batch", "chosen", "device"}
    assert probe_figures["batch"] == 8 and 3 <= probe_figures["length"] <= 32
    announced = [e for e in events if e["event"] == "precision"]
    assert len(announced) == 1 and announced[0]["probe"] == probe_figures
    assert announced[0]["message"].endswith("training in fp32")  # TF32 is a GPU thing

    # tiny_base_model has dropout: equal weights mean the probe's draws were undone
    a = load_file(str(plain.artifact_dir / "model.safetensors"))
    b = load_file(str(probed.artifact_dir / "model.safetensors"))
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert [h["train_loss"] for h in plain.history] == [h["train_loss"] for h in probed.history]


def test_the_measured_precision_is_the_one_the_run_trains_in(tmp_path, monkeypatch,
                                                             tiny_base_model, data):
    monkeypatch.setattr(loop, "measures_precision", lambda device, requested, width=None: True)
    monkeypatch.setattr(precision, "measure_precision",
                        lambda *args, **kwargs: ("bf16", {"fp32": 12.0, "bf16": 6.0}))
    autocast_dtypes = []
    real_autocast = torch.autocast

    def autocast(device_type, dtype=None, enabled=True, **kwargs):
        if enabled:
            autocast_dtypes.append(dtype)
        return real_autocast(device_type, dtype=dtype, enabled=enabled, **kwargs)

    monkeypatch.setattr(torch, "autocast", autocast)
    events = []
    train(tiny_base_model, tmp_path, data, events, epochs=1)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["device"]["precision"] == "bf16"
    assert record["device"]["precision_probe"]["bf16_ms"] == 6.0
    assert autocast_dtypes and set(autocast_dtypes) == {torch.bfloat16}
    message = next(e["message"] for e in events if e["event"] == "precision")
    assert message.startswith("bf16 ran 2.00x the speed of fp32") and "training in bf16" in message


def test_only_auto_on_a_gpu_is_measured(monkeypatch):
    cuda = torch.device("cuda")
    assert measures_precision(cuda, "auto")
    assert not measures_precision(cuda, "bf16") and not measures_precision(cuda, "fp32")
    assert not measures_precision(CPU, "auto")  # width unknown
    assert half_precision(CPU) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert half_precision(cuda) == "fp16"


def test_describe_device_says_a_gpu_run_measures_its_precision(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: SimpleNamespace(name="NVIDIA H100 80GB HBM3",
                                                       total_memory=80 * 2**30))
    info = describe_device(TrainConfig())
    assert info == {"device": "cuda", "name": "NVIDIA H100 80GB HBM3", "memory_gb": 80.0,
                    "precision": "fp32 or bf16, measured at start"}
    assert device_label(info) == ("cuda (NVIDIA H100 80GB HBM3, fp32 or bf16, measured at "
                                  "start)")
    assert describe_device(TrainConfig(precision="bf16"))["precision"] == "bf16"
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: False)
    assert describe_device(TrainConfig(device="cpu"))["precision"] == "fp32"


@pytest.mark.parametrize("native, width, expected", [
    (True, 384, True), (True, 768, True), (True, 32, False), (True, None, False),
    (False, 384, False), (False, 768, False),
])
def test_a_cpu_with_bf16_instructions_measures_real_models(monkeypatch, native, width, expected):
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: native)
    assert measures_precision(CPU, "auto", width) is expected
    assert not measures_precision(CPU, "fp32", width) and not measures_precision(CPU, "bf16", width)


def test_describe_device_on_a_cpu_with_bf16_says_it_measures(monkeypatch, bundled_model_dir):
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: True)
    config = TrainConfig(device="cpu", base_model=str(bundled_model_dir))
    assert describe_device(config)["precision"] == "fp32 or bf16, measured at start"
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: False)
    assert describe_device(config)["precision"] == "fp32"


def test_the_cpu_check_reads_torch_and_never_fails(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert device_module.cpu_has_bf16() is True
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert device_module.cpu_has_bf16() is False


def test_on_the_cpu_the_probe_times_a_few_of_the_longest_rows(monkeypatch):
    seen = []

    def measure(model, inputs, device, half):
        seen.append(list(inputs["rows"]))
        return "bf16", {"fp32": 300.0, "bf16": 190.0}

    monkeypatch.setattr(precision, "measure_precision", measure)
    lengths = list(range(10, 42))  # 32 features, feature i is 10 + i tokens long
    sizes = BatchSizes(32, 32, 64)
    choice, record = choose_precision(torch.nn.Linear(2, 2), lengths, [list(range(32))],
                                      lambda piece: {"rows": piece}, sizes, CPU)
    assert choice == "bf16" and record["batch"] == precision.CPU_PROBE_ROWS == 8
    assert seen == [list(range(31, 23, -1))]  # the 8 longest rows of the batch
    assert record["length"] == 41 and record["device"] == "cpu"


def test_evaluation_runs_in_fp32_whatever_the_training_precision(tmp_path, tiny_base_model,
                                                                 data, monkeypatch):
    """The recorded validation score must be the one the fp32 bundle reproduces."""
    calls = []
    real_autocast = torch.autocast

    def autocast(device_type, dtype=None, enabled=True, **kwargs):
        calls.append((enabled, torch.is_inference_mode_enabled()))
        return real_autocast(device_type, dtype=dtype, enabled=enabled, **kwargs)

    monkeypatch.setattr(torch, "autocast", autocast)
    train(tiny_base_model, tmp_path, data, epochs=1, precision="bf16")
    training = [enabled for enabled, inference in calls if not inference]
    evaluation = [enabled for enabled, inference in calls if inference]
    assert training and all(training)  # bf16 autocast while training
    assert evaluation and not any(evaluation)  # plain fp32 while evaluating
