"""ONNX export of tiny runs: parity, manifest and hashes, dynamic axes, int8, all-or-nothing."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import pytest
import transformers
from tokenizers import Tokenizer

from annotune.core.bundle import verify_bundle
from annotune.core.errors import AnnotuneError
from annotune.core.export import build, export_run, parity
from annotune.core.plugins import registry
from annotune.core.tasks import TaskSettings

SAMPLES = [
    {"text": "A short one."},
    {"text": "This sentence is a good deal longer than the first, so the batch has padding in "
             "it and the comparison must ignore the padded positions."},
    {"text": "Ana Silva works for Nokia in Espoo."},
    {"text": "ok"},
]
QA_SAMPLES = [
    {"context": "The bridge was finished in 1932 and painted red the year after.",
     "question": "When was the bridge finished?"},
    {"context": "Tea came to the town with the railway.", "question": "What brought tea?"},
]


def make_run(folder, base_model, task_name, settings, samples):
    """Write a run folder like the training loop does: model/ plus run.json."""
    task = registry().task(task_name)
    auto_class = getattr(transformers, task.auto_model)
    model = auto_class.from_pretrained(base_model, **task.model_kwargs(settings))
    model.save_pretrained(folder / "model")
    transformers.AutoTokenizer.from_pretrained(base_model).save_pretrained(folder / "model")
    run = {"task": task_name, "settings": settings.to_dict(), "config": {"epochs": 1},
           "metrics": {task.main_metric: 0.5}, "base_model": "tiny", "device": "cpu",
           "samples": samples}
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory, tiny_base_model):
    return make_run(tmp_path_factory.mktemp("run"), tiny_base_model, "text-classification",
                    TaskSettings(labels=("neg", "pos", "mixed")), SAMPLES)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, classifier_run):
    out = tmp_path_factory.mktemp("exports") / "bundle"
    return export_run(classifier_run, out)


def test_classifier_export_passes_parity_and_writes_a_bundle(exported, classifier_run):
    assert exported.parity_max_diff <= 1e-4
    assert exported.parity_examples == len(SAMPLES)
    assert exported.parity_features == len(SAMPLES)
    assert exported.latency_ms > 0
    assert not exported.quantized and exported.int8_agreement is None
    folder = exported.bundle_dir
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json", "model.onnx", "model.onnx.data", "tokenizer.json"]
    # weights live beside the graph (memory-mapped on load), the graph file stays small
    assert (folder / "model.onnx").stat().st_size < (folder / "model.onnx.data").stat().st_size
    # the temporary sibling folder was renamed, not left behind
    assert [p.name for p in folder.parent.iterdir()] == ["bundle"]
    assert exported.files == {p.name: p.stat().st_size for p in folder.iterdir()
                              if p.name != "manifest.json"}
    assert exported.model_bytes == sum((folder / name).stat().st_size
                                       for name in ("model.onnx", "model.onnx.data"))
    assert "parity      max |onnx - torch|" in str(exported)


def test_manifest_describes_the_run_and_hashes_every_file(exported, classifier_run):
    folder = exported.bundle_dir
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    run = json.loads((classifier_run / "run.json").read_text(encoding="utf-8"))
    assert manifest["task"] == "text-classification"
    assert manifest["labels"] == ["neg", "pos", "mixed"]
    assert manifest["settings"] == run["settings"]
    assert manifest["windowing"] == {"max_length": 128, "stride": 128}
    assert manifest["metrics"] == run["metrics"]
    assert manifest["onnx"]["opset"] == 17
    assert manifest["onnx"]["outputs"] == ["logits"]
    # each of the tiny model's two layers became one onnxruntime Attention node
    assert manifest["onnx"]["fused_operators"]["Attention"] == 2
    assert exported.fused == manifest["onnx"]["fused_operators"]
    assert "graph       fused for onnxruntime: " in str(exported)
    assert manifest["quantization"] is None
    assert manifest["parity"]["max_abs_diff"] == exported.parity_max_diff
    assert manifest["parity"]["tolerance"] == 1e-4
    assert manifest["annotune_version"]
    assert set(manifest["files"]) == {"model.onnx", "model.onnx.data", "tokenizer.json"}
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        assert manifest["files"][name] == {"bytes": len(data),
                                           "sha256": hashlib.sha256(data).hexdigest()}
    assert verify_bundle(folder)["task"] == "text-classification"


def test_bundled_tokenizer_neither_pads_nor_truncates(exported):
    tokenizer = Tokenizer.from_file(str(exported.bundle_dir / "tokenizer.json"))
    assert tokenizer.padding is None and tokenizer.truncation is None
    assert len(tokenizer.encode("ok").ids) == 3


@pytest.mark.parametrize(("batch", "length"), [(1, 5), (7, 40), (7, 5), (1, 40)])
def test_exported_graph_takes_any_batch_and_length(exported, batch, length):
    session = ort.InferenceSession(str(exported.model_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(batch * 100 + length)
    ids = rng.integers(1000, 20000, size=(batch, length), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[0, length // 2:] = 0
    (logits,) = session.run(["logits"], {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})
    assert logits.shape == (batch, 3)
    assert np.isfinite(logits).all()


@pytest.mark.parametrize(("change", "figure"), [(1e-3, r"0\.001"), (float("nan"), "nan")])
def test_broken_parity_fails_loudly_and_writes_nothing(classifier_run, tmp_path, monkeypatch,
                                                       change, figure):
    real = parity.onnx_outputs

    def perturbed(session, batch, names):
        return {name: value + change for name, value in real(session, batch, names).items()}

    monkeypatch.setattr(parity, "onnx_outputs", perturbed)
    with pytest.raises(AnnotuneError, match=rf"parity check failed.*up to {figure}") as error:
        export_run(classifier_run, tmp_path / "bundle")
    assert "tolerance 0.0001" in str(error.value) and "logits" in str(error.value)
    assert list(tmp_path.iterdir()) == []  # no bundle, no temporary folder


def test_int8_export_reports_agreement_and_shrinks_the_model(classifier_run, tmp_path,
                                                             exported, monkeypatch):
    working = tmp_path / "working"
    working.mkdir()
    monkeypatch.chdir(working)  # onnxruntime tools like to drop files into the current folder
    stages = []
    report = export_run(classifier_run, tmp_path / "int8", quantize=True,
                        progress=stages.append)
    assert stages[0] == "loading the model" and "quantizing to int8" in stages
    assert report.quantized
    assert 0.0 <= report.int8_agreement <= 1.0
    assert 0.0 <= report.int8_argmax_agreement <= 1.0
    assert report.int8_bytes == report.model_bytes
    assert report.model_bytes < report.fp32_bytes / 2
    assert report.fp32_bytes == exported.fp32_bytes
    manifest = verify_bundle(report.bundle_dir)
    quantization = manifest["quantization"]
    assert quantization["weight_type"] == "QInt8"
    assert quantization["preprocessed"] is True  # onnxruntime's pre-processing ran
    assert quantization["prediction_agreement"] == report.int8_agreement
    assert quantization["fp32_bytes"] == report.fp32_bytes
    assert manifest["onnx"]["dtype"] == "int8"
    graph = onnx.load(str(report.model_path), load_external_data=False)
    assert sum(node.op_type == "QAttention" for node in graph.graph.node) == 2  # fused, int8
    names = sorted(p.name for p in report.bundle_dir.iterdir())
    # no scratch files kept (fp32 weights, the other quantization scheme, pre-processing)
    assert names == ["manifest.json", "model.onnx", "model.onnx.data", "tokenizer.json"]
    assert list(working.iterdir()) == []


def test_a_fused_graph_that_drifts_is_replaced_by_the_plain_one(classifier_run, tmp_path,
                                                                monkeypatch):
    def drifting_fusion(source, target, shape):
        model = onnx.load(str(source))
        for tensor in model.graph.initializer:
            if tensor.name.endswith("classifier.bias"):
                values = onnx.numpy_helper.to_array(tensor) + 1.0
                tensor.CopyFrom(onnx.numpy_helper.from_array(values, tensor.name))
        onnx.save(model, str(target))
        return {"Attention": 2}

    monkeypatch.setattr(build, "fuse_encoder", drifting_fusion)
    report = export_run(classifier_run, tmp_path / "bundle")
    assert report.parity_max_diff <= 1e-4  # the bundle holds the plain graph
    assert report.fused is None
    assert any("the plain graph was exported instead" in note for note in report.notes)
    assert verify_bundle(report.bundle_dir)["onnx"]["fused_operators"] is None


def test_fusion_can_be_switched_off(classifier_run, tmp_path):
    report = export_run(classifier_run, tmp_path / "bundle", fuse=False)
    assert report.fused is None and report.parity_max_diff <= 1e-4
    graph = onnx.load(str(report.model_path), load_external_data=False)
    assert not any(node.op_type == "Attention" for node in graph.graph.node)


def test_refuses_to_overwrite_a_folder_that_is_not_a_bundle(classifier_run, tmp_path):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(AnnotuneError, match="refusing to overwrite"):
        export_run(classifier_run, target)
    assert [p.name for p in target.iterdir()] == ["holiday.jpg"]


def test_replaces_an_older_bundle(classifier_run, exported, tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    for path in exported.bundle_dir.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    (target / "stale.txt").write_text("from the old bundle", encoding="utf-8")
    report = export_run(classifier_run, target, parity_texts=["one text", "and another one"])
    assert report.parity_examples == 2
    assert not (target / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_an_export_stopped_at_its_last_stage_leaves_the_older_bundle_as_it_was(
        classifier_run, exported, tmp_path, monkeypatch):
    """Ctrl-C after the new manifest was written: the bundle in place is still the old one."""
    target = tmp_path / "bundle"
    target.mkdir()
    for path in exported.bundle_dir.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    before = {path.name: path.read_bytes() for path in target.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "measure_latency", interrupted)
    texts = ["Pizza 🍕 night\r\nwith the 👨\u200d👩\u200d👧", "Jose\u0301 liked 東京",
             "مرحبا بالعالم", "שלום עולם"]
    with pytest.raises(KeyboardInterrupt):
        export_run(classifier_run, target, parity_texts=texts)
    assert {path.name: path.read_bytes() for path in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # no hidden folder left


def test_a_runs_model_folder_is_accepted_for_the_run(classifier_run, tmp_path):
    """Runs record model/ as their artifact; exporting that folder exports the run."""
    report = export_run(classifier_run / "model", tmp_path / "bundle", parity_texts=["hi"])
    assert verify_bundle(report.bundle_dir)["task"] == "text-classification"
    # a single parity text still traces with two rows, so the batch axis stays dynamic
    session = ort.InferenceSession(str(report.model_path), providers=["CPUExecutionProvider"])
    ids = np.full((5, 9), 1000, dtype=np.int64)
    (logits,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                   "token_type_ids": np.zeros_like(ids)})
    assert logits.shape == (5, 3)


def test_missing_run_files_are_explained(tmp_path, classifier_run):
    with pytest.raises(AnnotuneError, match="run.json is missing"):
        export_run(tmp_path, tmp_path / "out")
    (tmp_path / "run.json").write_text(json.dumps({"task": "text-classification"}))
    with pytest.raises(AnnotuneError, match="no saved model"):
        export_run(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(("task_name", "settings", "samples"), [
    ("token-classification", TaskSettings(labels=("PER", "ORG", "LOC")), SAMPLES),
    ("question-answering", TaskSettings(max_length=48, stride=16), QA_SAMPLES),
])
def test_sequence_outputs_export_with_parity_at_real_tokens(tmp_path, tiny_base_model,
                                                            task_name, settings, samples):
    run = make_run(tmp_path / "run", tiny_base_model, task_name, settings, samples)
    report = export_run(run, tmp_path / "bundle")
    task = registry().task(task_name)
    assert report.parity_max_diff <= 1e-4
    assert set(report.parity_per_output) == set(task.output_names)
    session = ort.InferenceSession(str(report.model_path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(task.output_names)
    ids = np.full((3, 11), 1000, dtype=np.int64)
    outputs = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                 "token_type_ids": np.zeros_like(ids)})
    assert all(output.shape[:2] == (3, 11) for output in outputs)
    manifest = verify_bundle(report.bundle_dir)
    assert manifest["onnx"]["sequence_outputs"] is True
    assert manifest["windowing"]["stride"] == settings.stride
    if task_name == "question-answering":
        # long contexts are cut into several windows; parity covered all of them
        assert report.parity_features >= report.parity_examples


def test_models_without_token_type_ids_export_with_two_inputs(tmp_path, bundled_model_dir):
    """DistilBERT-like models take no token_type_ids; the bundle and Predictor cope."""
    from annotune.core.inference import Predictor

    config = transformers.DistilBertConfig(vocab_size=30522, dim=32, n_layers=1, n_heads=2,
                                           hidden_dim=37, num_labels=2)
    model = transformers.AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(tmp_path / "run" / "model")
    transformers.AutoTokenizer.from_pretrained(bundled_model_dir).save_pretrained(
        tmp_path / "run" / "model")
    run = {"task": "text-classification", "settings": {"labels": ["a", "b"]},
           "samples": SAMPLES[:2]}
    (tmp_path / "run" / "run.json").write_text(json.dumps(run), encoding="utf-8")
    report = export_run(tmp_path / "run", tmp_path / "bundle")
    assert report.parity_max_diff <= 1e-4
    assert report.fused["Attention"] == 1  # onnxruntime's fusion knows DistilBERT's graph too
    predictor = Predictor(report.bundle_dir)
    assert predictor.manifest["onnx"]["inputs"] == ["input_ids", "attention_mask"]
    assert predictor.predict_one("hello")["label"] in ("a", "b")


def export_in_a_child(run_dir, out_dir):
    """Run the export job as the desktop starts it; return its exit code and its events."""
    command = [sys.executable, "-m", "annotune.core.export.job", str(run_dir), str(out_dir)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def test_child_process_export_reports_json_lines(classifier_run, tmp_path):
    code, events = export_in_a_child(classifier_run, tmp_path / "bundle")
    assert code == 0
    assert [e["stage"] for e in events if e["event"] == "stage"] == [
        "loading the model", "exporting to ONNX", "fusing the graph, checking parity on 4 samples",
        "measuring speed"]
    assert events[-1]["event"] == "finished"
    assert events[-1]["report"]["bundle_dir"] == str(tmp_path / "bundle")
    assert events[-1]["report"]["parity_max_diff"] <= 1e-4
    assert verify_bundle(tmp_path / "bundle")["task"] == "text-classification"
    # a failure is an event and exit code 1, not a traceback
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine", encoding="utf-8")
    code, events = export_in_a_child(classifier_run, tmp_path / "other")
    assert code == 1
    assert events[-1]["event"] == "failed" and "refusing to overwrite" in events[-1]["error"]
