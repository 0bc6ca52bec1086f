"""The torch-free Predictor: same predictions as PyTorch, input order, checks, pre-annotation."""

import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import onnxruntime as ort
import pytest
import torch
import transformers

from annotune.core import inference, runtime
from annotune.core.errors import AnnotuneError
from annotune.core.export import export_run
from annotune.core.features import prepare_tokenizer, split_outputs
from annotune.core.formats.base import ImportRecord
from annotune.core.inference import Predictor
from annotune.core.plugins import registry
from annotune.core.preannotate import preannotate, prediction_source
from annotune.core.runtime import physical_cores
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

TEXTS = [
    "This one is long enough to be the longest text of the whole list by a clear margin, "
    "which puts it in a batch of its own once lengths are sorted.",
    "Tiny.",
    "Somewhere in the middle in length.",
    "Berlin and Paris are cities; Siemens is a company.",
    "x",
]


def make_run(folder, base_model, task_name, settings):
    """Write a run folder like the training loop does: model/ plus run.json."""
    task = registry().task(task_name)
    model = getattr(transformers, task.auto_model).from_pretrained(
        base_model, **task.model_kwargs(settings))
    model.save_pretrained(folder / "model")
    transformers.AutoTokenizer.from_pretrained(base_model).save_pretrained(folder / "model")
    run = {"task": task_name, "settings": settings.to_dict(), "config": {}, "metrics": {},
           "base_model": "tiny", "device": "cpu", "samples": [{"text": t} for t in TEXTS]}
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return folder


def torch_predictions(run_dir, texts):
    """Decode predictions the PyTorch way: one unpadded example at a time."""
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    task = registry().task(run["task"])
    settings = TaskSettings.from_dict(run["settings"])
    model = getattr(transformers, task.auto_model).from_pretrained(run_dir / "model").eval()
    tokenizer = prepare_tokenizer(run_dir / "model" / "tokenizer.json")
    examples = [{"text": text} for text in texts]
    features = task.encode(tokenizer, examples, None, settings)
    outputs = []
    with torch.inference_mode():
        for feature in features:
            out = model(input_ids=torch.tensor([feature.input_ids]),
                        token_type_ids=torch.tensor([feature.token_type_ids]),
                        attention_mask=torch.ones((1, len(feature)), dtype=torch.long))
            arrays = {name: out[name].numpy() for name in task.output_names}
            outputs.extend(split_outputs(arrays, [feature], task.sequence_outputs))
    return task.decode(examples, features, outputs, settings)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, tiny_base_model):
    """(run folder, bundle folder) of a tiny 3-label text classifier."""
    root = tmp_path_factory.mktemp("classifier")
    run = make_run(root / "run", tiny_base_model, "text-classification",
                   TaskSettings(labels=("neg", "pos", "mixed")))
    return run, export_run(run, root / "bundle").bundle_dir


@pytest.fixture(scope="module")
def tagger(tmp_path_factory, tiny_base_model):
    root = tmp_path_factory.mktemp("tagger")
    run = make_run(root / "run", tiny_base_model, "token-classification",
                   TaskSettings(labels=("PER", "ORG", "LOC")))
    return run, export_run(run, root / "bundle").bundle_dir


def test_classifier_predictions_equal_pytorch_in_input_order(classifier):
    run, bundle = classifier
    predictor = Predictor(bundle, batch_size=2)  # several length-sorted batches
    expected = torch_predictions(run, TEXTS)
    got = predictor.predict(TEXTS)
    assert [p["label"] for p in got] == [p["label"] for p in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert set(mine["probabilities"]) == {"neg", "pos", "mixed"}
        for label, value in theirs["probabilities"].items():
            assert mine["probabilities"][label] == pytest.approx(value, abs=1e-5)
    # one at a time gives the same as batched
    assert predictor.predict_one(TEXTS[2])["probabilities"] == pytest.approx(
        got[2]["probabilities"], abs=1e-6)


def test_token_predictions_equal_pytorch(tagger):
    run, bundle = tagger
    expected = torch_predictions(run, TEXTS)
    got = Predictor(bundle, batch_size=3).predict_texts(TEXTS)
    for mine, theirs in zip(got, expected, strict=True):
        assert [(s["start"], s["end"], s["label"]) for s in mine["spans"]] == [
            (s["start"], s["end"], s["label"]) for s in theirs["spans"]]
        for a, b in zip(mine["spans"], theirs["spans"], strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)


def test_predictor_exposes_task_labels_and_manifest(classifier):
    _, bundle = classifier
    predictor = Predictor(bundle)
    assert predictor.task.name == "text-classification"
    assert predictor.labels == ("neg", "pos", "mixed")
    assert predictor.manifest["model"] == "model.onnx"
    assert predictor.predict([]) == []
    assert predictor.predict([{"text": "a mapping works too"}])[0]["label"] in predictor.labels
    assert 0.0 <= predictor.score(predictor.predict_one("hello")) <= 1.0


def test_session_uses_physical_cores_one_inter_thread_and_all_optimisations(classifier):
    _, bundle = classifier
    options = Predictor(bundle).session.get_session_options()
    assert options.intra_op_num_threads == physical_cores()
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert Predictor(bundle, threads=1).session.get_session_options().intra_op_num_threads == 1
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)


def test_physical_cores_falls_back_without_linux_topology(monkeypatch):
    monkeypatch.setattr(runtime, "_allowed_cpus", lambda: [0, 1, 2])
    monkeypatch.setattr(runtime, "_linux_cores", lambda cpus: 0)
    fake_psutil = types.SimpleNamespace(cpu_count=lambda logical=True: 8)
    monkeypatch.setitem(sys.modules, "psutil", fake_psutil)
    assert physical_cores() == 3  # psutil's count, capped by the CPUs this process may use
    monkeypatch.setitem(sys.modules, "psutil", None)  # not installed
    assert physical_cores() == 3
    monkeypatch.setattr(runtime, "_allowed_cpus", lambda: [5])
    assert physical_cores() == 1


def test_cuda_that_is_not_there_is_refused(classifier, monkeypatch):
    _, bundle = classifier
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(AnnotuneError, match="no CUDA support"):
        Predictor(bundle, device="cuda")
    assert Predictor(bundle, device="auto").providers == ["CPUExecutionProvider"]


def test_bad_items_are_explained(classifier):
    predictor = Predictor(classifier[1])
    with pytest.raises(AnnotuneError, match="item 1 has no text in field 'text'"):
        predictor.predict(["fine", {"body": "wrong key"}])
    with pytest.raises(AnnotuneError, match="item 0 is a int"):
        predictor.predict([3])


def test_text_with_half_a_surrogate_pair_is_explained(classifier):
    predictor = Predictor(classifier[1])
    whole = "pizza \ud83c\udf55".encode("utf-16", "surrogatepass").decode("utf-16")
    assert whole == "pizza 🍕" and predictor.predict_one(whole)["label"] in predictor.labels
    with pytest.raises(AnnotuneError) as caught:
        predictor.predict(["👨‍👩‍👧 fine", "Jose\u0301 and half \udf55 a pizza"])
    assert "item 1, field 'text': the text holds a lone surrogate U+DF55 at character 16" \
        in str(caught.value)
    assert "\\ud83c\\udf55" in caught.value.hint
    with pytest.raises(AnnotuneError, match=r"item 0, field 'text': .*U\+D83C"):
        predictor.predict([{"text": "東京 \ud83c"}])


def test_tampered_bundle_is_refused(classifier, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(classifier[1], copy)
    for name in ("model.onnx.data", "model.onnx"):  # weights, then the graph
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(AnnotuneError, match=rf"'{name}' does not match its sha256"):
            Predictor(copy)
        shutil.copy(classifier[1] / name, copy / name)
    tokenizer = json.loads((copy / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["padding"] = {"strategy": {"Fixed": 128}}  # the edit that makes texts 10x slower
    (copy / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    with pytest.raises(AnnotuneError, match="tokenizer.json"):
        Predictor(copy)


def test_predicting_imports_neither_torch_nor_transformers_nor_qt(classifier):
    """The inference-only install has onnxruntime, tokenizers, numpy and pluggy, nothing more."""
    training_only = ("torch", "transformers", "PySide6", "sqlite_utils", "safetensors")
    code = (
        "import sys\n"
        "from annotune.core.inference import Predictor\n"
        f"p = Predictor({str(classifier[1])!r})\n"
        "assert p.predict(['hello there'])[0]['label'] in p.labels\n"
        f"print(sorted(m for m in {training_only!r} if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_inference_module_does_no_heavy_work_at_import():
    code = ("import sys, annotune.core.inference\n"
            "print('onnxruntime' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"
    assert inference.DEVICES == ("cpu", "cuda", "auto")


# -- pre-annotation -------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path):
    project = Project.create(tmp_path / "p.annotune", task="text-classification",
                             settings=TaskSettings(labels=("neg", "pos", "mixed")))
    records = [ImportRecord(fields={"text": text}, line=n + 1) for n, text in enumerate(TEXTS)]
    records[0].annotation = {"label": "pos"}
    project.add_examples(records, source="texts.txt")
    yield project
    project.close()


def test_preannotate_stores_predictions_for_unlabeled_examples(project, classifier):
    bundle = classifier[1]
    seen = []
    count = preannotate(project, bundle, batch_size=2,
                        progress=lambda done, total: seen.append((done, total)))
    assert count == len(TEXTS) - 1
    assert seen[-1] == (count, count)
    predictor = Predictor(bundle)
    source = prediction_source(bundle)
    labeled, *unlabeled = project.examples(limit=10)
    assert project.prediction(labeled.id) is None
    for example in unlabeled:
        stored = project.prediction(example.id, source)
        expected = predictor.predict_one(example.fields["text"])
        assert stored.payload["label"] == expected["label"]
        assert stored.score == pytest.approx(predictor.task.prediction_score(expected))
    assert preannotate(project, bundle, only_unlabeled=False) == len(TEXTS)


def test_preannotate_refuses_a_bundle_of_another_task(tmp_path, tagger):
    project = Project.create(tmp_path / "q.annotune", task="text-classification",
                             settings=TaskSettings(labels=("PER",)))
    with pytest.raises(AnnotuneError, match="predicts 'token-classification'"):
        preannotate(project, tagger[1])
    project.close()


def test_preannotate_stops_when_progress_says_so(project, classifier, monkeypatch):
    monkeypatch.setattr("annotune.core.preannotate.PAGE", 2)
    count = preannotate(project, classifier[1], progress=lambda done, total: done < 2)
    assert count == 2


def test_predictions_are_finite_numbers(classifier):
    probabilities = [list(p["probabilities"].values())
                     for p in Predictor(classifier[1]).predict(TEXTS)]
    assert np.isfinite(probabilities).all()
    assert np.allclose(np.sum(probabilities, axis=1), 1.0)
