"""Bundles: every file a Predictor opens is listed, inside the folder, and checked first."""

from __future__ import annotations

import json
import shutil
import sys

import onnx
import pytest
import transformers
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import (
    _get_all_tensors,
    convert_model_to_external_data,
    uses_external_data,
)

from annotune.core import bundle, graph_files, inference
from annotune.core.errors import AnnotuneError
from annotune.core.export import export_run
from annotune.core.inference import Predictor
from annotune.core.tasks import TaskSettings

TEXTS = ["🍕 tonight", "👨‍👩‍👧 trip", "Jose\u0301 was bored", "東京の映画", "فيلم سيء"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_base_model):
    """A tiny text classifier's bundle, as annotune export writes it."""
    root = tmp_path_factory.mktemp("bundle-checks")
    settings = TaskSettings(labels=("neg", "pos"))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_base_model, num_labels=2)
    model.save_pretrained(root / "run" / "model")
    transformers.AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(
        root / "run" / "model")
    (root / "run" / "run.json").write_text(json.dumps({
        "task": "text-classification", "settings": settings.to_dict(), "config": {},
        "metrics": {}, "samples": [{"text": t} for t in TEXTS]}), encoding="utf-8")
    return export_run(root / "run", root / "bundle").bundle_dir


@pytest.fixture
def copy(exported, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(exported, target)
    return target


@pytest.fixture
def opened(monkeypatch):
    """Record every path the Predictor hands to the tokenizer and to onnxruntime."""
    paths = []

    def recording(function):
        def call(path, *args, **kwargs):
            paths.append(str(path))
            return function(path, *args, **kwargs)
        return call

    monkeypatch.setattr(inference, "prepare_tokenizer", recording(inference.prepare_tokenizer))
    monkeypatch.setattr(inference, "open_session", recording(inference.open_session))
    return paths


def edit_manifest(folder, change):
    path = folder / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def flip_weight(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_an_intact_bundle_predicts_real_texts(copy, opened):
    predictions = Predictor(copy).predict(TEXTS)
    assert len(predictions) == len(TEXTS)
    assert opened == [str(copy / "tokenizer.json"), str(copy / "model.onnx")]


def test_weights_the_manifest_does_not_list_are_refused(copy, opened):
    """A manifest that omits model.onnx.data must not let a flipped weight load."""
    flip_weight(copy / "model.onnx.data")
    edit_manifest(copy, lambda m: m["files"].pop("model.onnx.data"))
    with pytest.raises(AnnotuneError) as caught:
        Predictor(copy)
    assert "reads its weights from 'model.onnx.data', which manifest.json does not list" \
        in str(caught.value)
    assert opened == []


def test_graph_pointing_at_an_unlisted_file_is_refused(copy, opened):
    """The graph itself, rewritten with a matching checksum, names weights nobody checked."""
    model = onnx.load(str(copy / "model.onnx"), load_external_data=False)
    for tensor in _get_all_tensors(model):
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "other.data"
    shutil.copy(copy / "model.onnx.data", copy / "other.data")
    flip_weight(copy / "other.data")
    onnx.save(model, str(copy / "model.onnx"))
    graph = (copy / "model.onnx").read_bytes()
    edit_manifest(copy, lambda m: m["files"].update(
        {"model.onnx": {"bytes": len(graph), "sha256": bundle.sha256_bytes(graph)}}))
    with pytest.raises(AnnotuneError, match="'other.data', which manifest.json does not list"):
        Predictor(copy)
    assert opened == []


def test_external_data_past_the_end_of_its_file_is_refused(copy):
    edit_manifest(copy, lambda m: m["files"]["model.onnx.data"].update(bytes=10))
    data = (copy / "model.onnx.data").read_bytes()[:10]
    (copy / "model.onnx.data").write_bytes(data)
    edit_manifest(copy, lambda m: m["files"]["model.onnx.data"].update(
        sha256=bundle.sha256_bytes(data)))
    with pytest.raises(AnnotuneError, match=r"reads bytes \d+-\d+ of 'model.onnx.data', which "
                                            r"has 10"):
        bundle.verify_bundle(copy)


@pytest.mark.parametrize("key", ["tokenizer", "model"])
def test_a_manifest_naming_a_file_outside_is_refused_before_it_is_opened(copy, tmp_path,
                                                                          opened, key):
    secret = tmp_path / "secret.json"
    shutil.copy(copy / "tokenizer.json", secret)  # a file the tokenizer would happily read
    entry = {"bytes": secret.stat().st_size, "sha256": bundle.sha256_file(secret)}
    reads = []
    hook_active = [True]
    sys.addaudithook(lambda event, args: hook_active[0] and event == "open"
                     and str(args[0]) == str(secret) and reads.append(args[0]))
    try:
        for name in (str(secret), f"../{secret.name}", f"sub/../../{secret.name}"):
            def point(m, name=name):
                m[key] = name
                m["files"][name] = entry
            edit_manifest(copy, point)
            with pytest.raises(AnnotuneError, match="names a file outside the bundle"):
                Predictor(copy)
    finally:
        hook_active[0] = False
    assert opened == [] and reads == []


def test_a_link_that_leads_out_of_the_folder_is_refused(copy, tmp_path, opened):
    outside = tmp_path / "elsewhere.json"
    shutil.move(copy / "tokenizer.json", outside)
    (copy / "tokenizer.json").symlink_to(outside)  # same bytes: the checksum alone passes
    with pytest.raises(AnnotuneError, match="'tokenizer.json' is a link to .*outside the bundle"):
        Predictor(copy)
    assert opened == []


def test_a_link_to_the_manifest_outside_is_refused(copy, tmp_path):
    outside = tmp_path / "manifest.json"
    shutil.move(copy / "manifest.json", outside)
    (copy / "manifest.json").symlink_to(outside)
    with pytest.raises(AnnotuneError, match="'manifest.json' is a link to"):
        bundle.read_manifest(copy)


def test_a_bundle_folder_reached_through_a_link_is_fine(exported, tmp_path):
    (tmp_path / "linked").symlink_to(exported)
    assert Predictor(tmp_path / "linked").predict(["🍕"])[0]["label"] in ("neg", "pos")


def test_an_entry_without_size_is_refused(copy):
    edit_manifest(copy, lambda m: m["files"]["tokenizer.json"].pop("bytes"))
    with pytest.raises(AnnotuneError, match="'tokenizer.json' has \\d+ bytes, the manifest says "
                                            "None"):
        bundle.verify_bundle(copy)


def test_a_graph_that_is_not_protobuf_is_refused_naming_it(copy):
    garbage = b"\x0f" * 64
    (copy / "model.onnx").write_bytes(garbage)
    edit_manifest(copy, lambda m: m["files"].update(
        {"model.onnx": {"bytes": len(garbage), "sha256": bundle.sha256_bytes(garbage)}}))
    with pytest.raises(AnnotuneError, match="'model.onnx' is not a readable ONNX graph"):
        bundle.verify_bundle(copy)


def test_external_data_is_read_as_onnx_reads_it(tmp_path):
    """Initializers, sparse ones, Constant attributes, subgraphs and functions alike."""
    import numpy as np

    def tensor(name, n):
        return numpy_helper.from_array(np.arange(n, dtype=np.float32) + 0.5, name)

    then = helper.make_graph([helper.make_node("Constant", [], ["t"], value=tensor("c_then", 300))],
                             "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT,
                                                                        [300])])
    other = helper.make_graph([helper.make_node("Constant", [], ["t"],
                                                value=tensor("c_else", 300))],
                              "else", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT,
                                                                         [300])])
    sparse = helper.make_sparse_tensor(tensor("sparse_values", 300),
                                       numpy_helper.from_array(np.arange(300, dtype=np.int64),
                                                               "sparse_indices"), [600])
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["t"], then_branch=then, else_branch=other),
         helper.make_node("Constant", [], ["k"], value=tensor("c_main", 300))],
        "main", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [300])],
        initializer=[tensor("init", 500)], sparse_initializer=[sparse])
    function = onnx.FunctionProto(name="f", domain="local",
                                  node=[helper.make_node("Constant", [], ["y"],
                                                         value=tensor("c_func", 300))],
                                  output=["y"])
    model = helper.make_model(graph, functions=[function])
    path = tmp_path / "m.onnx"
    convert_model_to_external_data(model, all_tensors_to_one_file=False, size_threshold=0,
                                   convert_attribute=True)
    onnx.save_model(model, str(path))
    loaded = onnx.load(str(path), load_external_data=False)
    expected = sorted((t.name, {e.key: e.value for e in t.external_data}["location"])
                      for t in _get_all_tensors(loaded) if uses_external_data(t))
    found = graph_files.external_data(path.read_bytes())
    assert sorted((r.tensor, r.location) for r in found) == expected
    assert {name for name, _ in expected} >= {"init", "c_main", "c_then", "c_else"}
    assert all(r.length and r.offset == 0 for r in found)


@pytest.mark.parametrize("data", [b"\x0a\xff\xff\xff\xff\x0f", b"\x80" * 12, b"\x0b"])
def test_malformed_protobuf_raises_its_own_error(data):
    with pytest.raises(graph_files.GraphFormatError):
        graph_files.external_data(data)
