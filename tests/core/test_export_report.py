"""The export report: three plain lines (size, speed, accuracy cost) before the details, and
an int8 bundle written as asked even when it costs more than its allowance, saying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers

from annotune.core.bundle import verify_bundle
from annotune.core.bundle_records import project_bundles
from annotune.core.export import export_run
from annotune.core.export.report import ExportReport
from annotune.core.export.validation import COST_LIMIT_POINTS, ValidationReport
from annotune.core.plugins import registry
from annotune.core.tasks import TaskSettings

MiB = 2**20


def _report(quantized: bool, validation: ValidationReport | None, **extra) -> ExportReport:
    return ExportReport(
        bundle_dir=Path("/tmp/bundle"), model_path=Path("/tmp/bundle/model.onnx"),
        files={"model.onnx": 1 * MiB, "model.onnx.data": (22 if quantized else 86) * MiB,
               "tokenizer.json": MiB},
        task="text-classification", parity_max_diff=1e-6, parity_per_output={"logits": 1e-6},
        parity_examples=6, parity_features=6, quantized=quantized, fp32_bytes=87 * MiB,
        latency_ms=3.25, validation=validation, **extra)


def _validation(fp32: float, int8: float | None) -> ValidationReport:
    return ValidationReport(metric="macro_f1", examples=1000, available=1000, fp32=fp32,
                            int8=int8, int8_agreement=0.99 if int8 is not None else None)


def test_the_report_leads_with_size_speed_and_accuracy_cost():
    lines = str(_report(True, _validation(0.8443, 0.8418))).splitlines()
    assert lines[0] == "Size:     23.0 MiB int8 model, 3.8× smaller than fp32 (87.0 MiB)"
    assert lines[1].startswith("Speed:    3.25 ms per example")
    assert lines[2] == ("Accuracy: int8 costs 0.25 points of Macro F1 (0.8418 against fp32's "
                        f"0.8443 on 1,000 validation examples), within the {COST_LIMIT_POINTS} "
                        "allowed")
    assert lines[3] == "" and lines[4].startswith("bundle ")


def test_an_int8_model_over_its_allowance_is_written_and_the_report_says_so():
    report = _report(True, _validation(0.8443, 0.8243))
    accuracy = report.headline()[2]
    assert accuracy.startswith("Accuracy: int8 costs 2.00 points of Macro F1")
    assert f"more than the {COST_LIMIT_POINTS} allowed" in accuracy
    assert "The int8 model was written as asked" in accuracy
    assert accuracy.endswith("to keep fp32's accuracy, export again without --int8")
    desktop = report.headline(remedy="choose fp32 (exact) and export again")[2]
    assert desktop.endswith("choose fp32 (exact) and export again") and "--" not in desktop


@pytest.mark.parametrize(("quantized", "validation", "expected"), [
    (False, None, "Accuracy: exact: the fp32 model computes what the trained model computes"),
    (False, _validation(0.91, None), "Accuracy: exact: fp32 keeps the trained model's Macro F1 "
                                     "(0.9100 on 1,000 validation examples)"),
    (True, _validation(0.80, 0.81), "Accuracy: no cost: int8 scores Macro F1 0.8100"),
    (True, None, "Accuracy: unknown: the run kept no validation data; int8 decides 83% of 6"),
])
def test_every_case_has_an_accuracy_line(quantized, validation, expected):
    report = _report(quantized, validation, int8_agreement=5 / 6 if quantized else None,
                     int8_argmax_agreement=5 / 6 if quantized else None)
    assert report.headline()[2].startswith(expected)
    assert len(str(report).split("\n\n")[0].splitlines()) == 3


def test_the_json_report_carries_the_three_lines():
    data = _report(False, None).to_dict()
    assert data["headline"][0] == "Size:     87.0 MiB fp32 model"
    json.dumps(data, default=str)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_base_model):
    """A run folder as training leaves it, with a small validation split."""
    folder = tmp_path_factory.mktemp("demo-runs") / "1"
    task = registry().task("text-classification")
    settings = TaskSettings(labels=("neg", "pos"))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_base_model, **task.model_kwargs(settings))
    model.save_pretrained(folder / "model")
    transformers.AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(folder / "model")
    texts = ["loved the 🍕", "Jose\u0301 was rude", "👨‍👩‍👧 had fun", "خدمة سيئة",
             "非常好", "never again\r\n"]
    (folder / "validation.jsonl").write_text("".join(
        json.dumps({"fields": {"text": t}, "annotation": {"label": ("pos", "neg")[i % 2]}},
                   ensure_ascii=False) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    run = {"task": task.name, "settings": settings.to_dict(), "config": {"epochs": 1},
           "metrics": {}, "main_metric": "f1", "samples": [{"text": t} for t in texts]}
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return folder


def test_int8_export_writes_int8_leads_with_its_cost_and_is_recorded(tiny_run, tmp_path,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = export_run(tiny_run, tmp_path / "bundle-int8", quantize=True)
    manifest = verify_bundle(report.bundle_dir)
    assert manifest["onnx"]["dtype"] == "int8"  # written as asked, whatever it costs
    first = str(report).splitlines()[:3]
    assert [line.split(":")[0] for line in first] == ["Size", "Speed", "Accuracy"]
    assert "int8" in first[0] and "6 validation examples" in first[2]
    # recorded beside the run, so the desktop's Try it tab lists it
    assert [b.path for b in project_bundles(tiny_run.parent)] == [
        (tmp_path / "bundle-int8").resolve()]
