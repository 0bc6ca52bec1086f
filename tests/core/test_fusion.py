"""Fusing exported encoder graphs into onnxruntime's transformer operators."""

import json
from collections import Counter

import numpy as np
import onnx
import pytest
import transformers

from annotune.core.export import export_onnx, load_model, onnx_module
from annotune.core.features import collate, pad_id, prepare_tokenizer
from annotune.core.fusion import encoder_shape, fuse_encoder
from annotune.core.parity import onnx_outputs, onnx_session
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
    assert fused["SkipLayerNormalization"] >= 2

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
