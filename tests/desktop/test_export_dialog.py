"""The export dialog shows what the export measured: size, parity, validation scores, speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers

from annotune.core.export import ExportReport
from annotune.core.export.validation import ValidationReport
from annotune.core.tasks import TaskSettings
from annotune.desktop.export_dialog import ExportDialog, report_lines

LABELS = ("neg", "pos")


def fake_report(tmp_path: Path, validation: ValidationReport | None, notes=()) -> ExportReport:
    return ExportReport(
        bundle_dir=tmp_path / "bundle-int8", model_path=tmp_path / "bundle-int8" / "model.onnx",
        files={"model.onnx": 1_000, "model.onnx.data": 22_000_000, "tokenizer.json": 700_000},
        task="text-classification", parity_max_diff=3.2e-6, parity_per_output={"logits": 3.2e-6},
        parity_examples=32, parity_features=32, quantized=True, fp32_bytes=90_000_000,
        int8_bytes=22_001_000, int8_agreement=0.96875, int8_argmax_agreement=0.96875,
        int8_scheme="per-channel", int8_sqnr_db=29.65,
        latency_ms=4.2, notes=list(notes), validation=validation)


@pytest.fixture
def dialog(qtbot, tmp_path):
    widget = ExportDialog({"id": 3, "artifact_dir": str(tmp_path / "3" / "model")}, tmp_path)
    qtbot.addWidget(widget)
    return widget


def test_the_dialog_shows_both_validation_scores_and_the_cost(dialog, tmp_path):
    validation = ValidationReport(metric="f1", examples=1_000, available=1_000, fp32=0.8443,
                                  recorded=0.8443, int8=0.8418, int8_agreement=0.985)
    dialog._done(fake_report(tmp_path, validation, validation.notes()))
    text = dialog.result_label.text()
    assert ("Validation: F1 fp32 0.8443, int8 0.8418 (-0.25 points) on 1,000 examples"
            in text.splitlines())
    assert "    fp32 bundle equals the checkpoint's recorded F1 0.8443" in text.splitlines()
    assert " f1 " not in text  # metric keys are for files, not for people
    assert ("int8 predictions equal to fp32: 96.9% of 32 samples (per-channel scales)"
            in text.splitlines())
    assert "⚠" not in text  # a quarter of a point is within the allowance


def test_a_cost_over_the_allowance_is_a_warning(dialog, tmp_path):
    validation = ValidationReport(metric="accuracy", examples=500, available=500, fp32=0.9,
                                  int8=0.891)
    dialog._done(fake_report(tmp_path, validation, validation.notes()))
    accuracy = dialog.headline_text().splitlines()[2]
    assert accuracy.startswith("Accuracy: int8 costs 0.90 points of Accuracy (0.8910 against "
                               "fp32's 0.9000 on 500 validation examples), more than the 0.5 "
                               "allowed.")
    assert accuracy.endswith("to keep fp32's accuracy, choose fp32 (exact) and export again")
    assert "⚠" not in dialog.result_label.text()  # said once, in the headline


def test_the_dialog_leads_with_size_speed_and_accuracy(dialog, tmp_path):
    validation = ValidationReport(metric="macro_f1", examples=1_000, available=1_000,
                                  fp32=0.8443, recorded=0.8443, int8=0.8418,
                                  int8_agreement=0.985)
    dialog._done(fake_report(tmp_path, validation, validation.notes()))
    assert dialog.headline_box.isVisibleTo(dialog)
    size, speed, accuracy = dialog.headline_text().splitlines()
    assert size == "Size: 21.0 MiB int8 model, 4.1× smaller than fp32 (85.8 MiB)"
    assert speed.startswith("Speed: 4.20 ms per example on this computer's CPU")
    assert accuracy.startswith("Accuracy: int8 costs 0.25 points of Macro F1")
    details = dialog.result_label.text().splitlines()
    assert details[0] == "Details"
    assert "Validation: Macro F1 fp32 0.8443, int8 0.8418 (-0.25 points) on 1,000 examples" \
        in details
    assert "macro_f1" not in dialog.headline_text() + dialog.result_label.text()


def test_every_wrapped_line_of_the_headline_shows(qtbot, dialog, tmp_path):
    dialog.resize(560, 200)
    dialog.show()
    validation = ValidationReport(metric="accuracy", examples=500, available=500, fp32=0.9,
                                  int8=0.891)
    dialog._done(fake_report(tmp_path, validation, validation.notes()))
    qtbot.wait(10)
    grid = dialog.headline_grid
    for row in range(grid.rowCount()):
        value = grid.itemAtPosition(row, 1).widget()
        assert value.height() >= value.heightForWidth(value.width()), value.text()
    label = dialog.result_label
    assert label.height() >= label.heightForWidth(label.width())


def test_without_validation_data_the_dialog_says_so(tmp_path):
    lines = report_lines(fake_report(tmp_path, None))
    assert any(line.startswith("Validation: no validation data was available") for line in lines)


def test_a_real_export_shows_its_validation_line(qtbot, dialog, tmp_path, tiny_base_model):
    run_dir = tmp_path / "3"
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_base_model, num_labels=2)
    model.save_pretrained(run_dir / "model")
    transformers.AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(run_dir / "model")
    records = [{"fields": {"text": f"review {i} was {'fine' if i % 2 else 'dull'}"},
                "annotation": {"label": LABELS[i % 2]}} for i in range(12)]
    (run_dir / "validation.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    run = {"task": "text-classification", "settings": TaskSettings(labels=LABELS).to_dict(),
           "main_metric": "f1", "metrics": {"f1": 0.5},
           "samples": [r["fields"] for r in records[:3]]}
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    dialog.start_export()
    qtbot.waitUntil(lambda: dialog.report is not None or dialog.error is not None,
                    timeout=180_000)  # an export child, on a busy machine
    assert dialog.error is None, dialog.error
    scored = dialog.report.validation
    assert scored.examples == 12
    assert (f"Validation: F1 fp32 {scored.fp32:.4f} on 12 examples"
            in dialog.result_label.text().splitlines())
