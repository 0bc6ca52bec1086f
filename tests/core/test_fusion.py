"""Fusing exported encoder graphs into onnxruntime's transformer operators."""

import json
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import transformers

from annotune.core import runtime
from annotune.core.export.fusion import encoder_shape, fuse_encoder
from annotune.core.export.parity import onnx_outputs, onnx_session
from annotune.core.export.trace import export_onnx, load_model, onnx_module
from annotune.core.features import collate, pad_id, prepare_tokenizer
from annotune.core.plugins import registry
from annotune.core.tasks import TaskSettings

TEXTS = ["A short one.", "ok", "This sentence is longer than the others, so the batch it is "
         "in has padding that the fused attention must mask out.", "Lisbon in May."]


@pytest.fixture(scope="module")
def traced(tmp_path_factory, tiny_base_model):
    """A tiny BERT classifier traced to ONNX the way the export does, and a padded batch."""
    task = registry().task("text-classification")
    settings = TaskSettings(labels=("neg", "pos"))
    folder = tmp_path_factory.mktemp("fusion")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_base_model, **task.model_kwargs(settings))
    model.save_pretrained(folder / "model")
    tokenizer = prepare_tokenizer(tiny_base_model / "tokenizer.json")
    features = task.encode(tokenizer, [{"text": t} for t in TEXTS], None, settings)
    batch = collate(features, pad_id(tokenizer))
    module = onnx_module(load_model(task, folder / "model"), task.output_names)
    export_onnx(module, batch, task, folder / "traced.onnx")
    return folder, batch


def test_fusion_replaces_each_attention_layer_and_keeps_the_outputs(traced):
    folder, batch = traced
    shape = encoder_shape(folder / "model")
    assert shape == {"model_type": "bert", "num_heads": 2, "hidden_size": 32}
    fused = fuse_encoder(folder / "traced.onnx", folder / "fused.onnx", shape)
    assert fused is not None
    assert fused["Attention"] == 2  # one per layer of the tiny model
    # residual adds stay beside their layer norms: the fused SkipLayerNormalization is slow
    # on the CPU (core/export/fusion.py)
    assert fused["LayerNormalization"] >= 2 and "SkipLayerNormalization" not in fused

    def op_counts(name):
        return Counter(node.op_type for node in onnx.load(str(folder / name)).graph.node)

    plain, fused_ops = op_counts("traced.onnx"), op_counts("fused.onnx")
    assert fused_ops["Attention"] == 2 and plain["Attention"] == 0
    assert sum(fused_ops.values()) < sum(plain.values()) / 2
    # the padded rows must come out the same: the fused attention reads the raw mask
    expected = onnx_outputs(onnx_session(folder / "traced.onnx"), batch, ["logits"])["logits"]
    actual = onnx_outputs(onnx_session(folder / "fused.onnx"), batch, ["logits"])["logits"]
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_unknown_architectures_are_left_as_exported(traced, tmp_path):
    folder, _ = traced
    shape = {**encoder_shape(folder / "model"), "model_type": "some-new-encoder"}
    assert fuse_encoder(folder / "traced.onnx", tmp_path / "fused.onnx", shape) is None
    assert not (tmp_path / "fused.onnx").exists()
    assert fuse_encoder(folder / "traced.onnx", tmp_path / "fused.onnx", None) is None


def test_a_config_without_heads_gives_no_shape(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert encoder_shape(tmp_path) is None
    assert encoder_shape(tmp_path / "missing") is None


def test_cpu_sessions_keep_the_residual_add_and_layer_norm_apart(traced, tmp_path):
    folder, _ = traced
    fuse_encoder(folder / "traced.onnx", folder / "fused.onnx", encoder_shape(folder / "model"))

    def optimised_ops(disabled):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
        ort.InferenceSession(str(folder / "fused.onnx"), options,
                             providers=["CPUExecutionProvider"], disabled_optimizers=disabled)
        graph = onnx.load(str(tmp_path / "optimised.onnx")).graph
        return Counter(node.op_type for node in graph.node)

    # onnxruntime's own fusion would put them back together; the name must be one it knows
    assert optimised_ops([])["SkipLayerNormalization"] >= 2
    kept = optimised_ops(list(runtime.CPU_DISABLED_OPTIMIZERS))
    assert kept["SkipLayerNormalization"] == 0 and kept["LayerNormalization"] >= 2


def test_only_cpu_sessions_leave_out_the_skip_layer_norm_fusion(traced, monkeypatch):
    folder, _ = traced
    opened = []
    monkeypatch.setattr(ort, "InferenceSession",
                        lambda path, options, providers, disabled_optimizers: opened.append(
                            (providers, disabled_optimizers)))
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    runtime.open_session(folder / "traced.onnx", device="cpu")
    runtime.open_session(folder / "traced.onnx", device="cuda")
    assert opened == [(["CPUExecutionProvider"], ["SkipLayerNormFusion"]),
                      (["CUDAExecutionProvider", "CPUExecutionProvider"], [])]
