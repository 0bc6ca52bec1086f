"""Train through the panel (tiny BERT in a child process), then export and try the bundle."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from annotune.core.formats.base import ImportRecord
from annotune.core.plugins import registry
from annotune.desktop.editors.label_editor import LabelEditor
from annotune.desktop.export_dialog import ExportDialog
from annotune.desktop.labeling import LabelingView
from annotune.desktop.train_panel import TrainPanel, format_eta
from annotune.desktop.tryit import TryItPanel

GOOD = ("lovely", "great", "superb", "wonderful", "excellent")
BAD = ("awful", "broken", "terrible", "useless", "horrible")


@pytest.fixture
def labeled_project(tmp_path, make_project):
    project = make_project(tmp_path / "reviews.annotune", "text-classification", ("neg", "pos"))
    records = []
    for i in range(40):
        word = GOOD[i % 5] if i % 2 else BAD[i % 5]
        records.append(ImportRecord(fields={"text": f"the {word} product number {i}"},
                                    annotation={"label": "pos" if i % 2 else "neg"}, line=i + 1))
    records.append(ImportRecord(fields={"text": "a great and lovely thing"}, line=41))
    project.add_examples(records, source="test")
    yield project
    project.close()


def test_format_eta():
    assert format_eta(None) == "…"
    assert format_eta(42) == "42s"
    assert format_eta(190) == "3m 10s"
    assert format_eta(3720) == "1h 02m"


def test_train_export_try_and_preannotate(qtbot, labeled_project, tiny_base_model):
    project = labeled_project
    task = registry().task(project.task_name)
    panel = TrainPanel(project, task)
    qtbot.addWidget(panel)
    panel.show()
    panel.set_base_model(str(tiny_base_model))
    panel.epochs.setValue(2)
    panel.batch_size.setValue(8)
    assert panel.config().base_model == str(tiny_base_model)
    ended = []
    panel.runEnded.connect(ended.append)
    qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert panel.running() and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended[0]["event"] == "finished", ended[0]
    assert panel.loss_chart.series["loss"], "no loss points were drawn"
    assert len(panel.metric_chart.series["f1"]) >= 1
    assert panel.progress.value() == panel.progress.maximum()
    run = project.runs()[-1]
    assert run["status"] == "finished"

    dialog = ExportDialog(run, project.runs_dir)
    qtbot.addWidget(dialog)
    exported = []
    dialog.exported.connect(exported.append)
    dialog.start_export()
    qtbot.waitUntil(lambda: dialog.report is not None or dialog.error is not None,
                    timeout=120_000)
    assert dialog.error is None, dialog.error
    assert "Parity with PyTorch" in dialog.result_label.text()
    assert "Graph: fused for onnxruntime (" in dialog.result_label.text()
    assert "ms per example" in dialog.headline_text()
    # training kept its validation split: the bundle is scored on it as the checkpoint was
    validation = dialog.report.validation
    assert validation.examples == validation.available >= 1
    assert validation.matches_recorded is True
    assert f"Validation: F1 fp32 {validation.fp32:.4f}" in dialog.result_label.text()
    assert dialog.headline_text().startswith("Size: ")

    tryit = TryItPanel(project, task)
    qtbot.addWidget(tryit)
    tryit.show()
    tryit.load_bundle(exported[0])
    qtbot.waitUntil(lambda: tryit.predictor is not None, timeout=60_000)
    qtbot.keyClicks(tryit.inputs["text"], "a superb thing")
    qtbot.waitUntil(lambda: tryit.last_prediction is not None, timeout=5_000)
    probabilities = tryit.last_prediction["probabilities"]
    assert set(probabilities) == {"neg", "pos"}
    assert tryit.result.bars.count() == 4  # a name and a bar per label

    with qtbot.waitSignal(tryit.preannotated, timeout=60_000) as stored:
        tryit.preannotate()  # runs on a worker thread: the window stays responsive
    assert stored.args == [1]
    assert "Stored suggestions for 1 examples" in tryit.status.text()
    view = LabelingView(project, task, LabelEditor(task, project.settings))
    qtbot.addWidget(view)
    view.start()
    assert view.current.fields["text"] == "a great and lovely thing"
    assert "Model suggests" in view.editor.suggestion_label.text()
    view.editor.accept()  # Enter accepts the suggestion
    assert view.wait_for_saves()
    stored = project.annotation(view.history[0])
    assert stored.payload["label"] in ("neg", "pos")


def test_stop_cancels_the_run_without_blocking(qtbot, labeled_project, tiny_base_model):
    project = labeled_project
    panel = TrainPanel(project, registry().task(project.task_name))
    qtbot.addWidget(panel)
    panel.set_base_model(str(tiny_base_model))
    panel.epochs.setValue(500)
    panel.batch_size.setValue(4)
    progress, ended = [], []
    panel.runEnded.connect(ended.append)
    panel.train()
    panel.watcher.progress.connect(progress.append)
    qtbot.waitUntil(lambda: bool(progress) or bool(ended), timeout=120_000)
    assert not ended, ended
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert panel.status.text() == "Stopping…"  # the click returned at once
    qtbot.waitUntil(lambda: bool(ended), timeout=60_000)
    assert ended[0]["event"] == "cancelled"
    assert project.runs()[-1]["status"] == "cancelled"
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()


def test_a_failed_run_shows_the_message_and_log(qtbot, labeled_project):
    panel = TrainPanel(labeled_project, registry().task(labeled_project.task_name))
    qtbot.addWidget(panel)
    panel._started({"event": "started", "run_id": 7, "train_examples": 36,
                    "validation_examples": 4,
                    "device": {"device": "cpu", "name": "Test CPU", "precision": "fp32"}})
    assert panel.status.text() == ("Training run 7 on cpu (Test CPU, fp32) · 36 training and "
                                   "4 validation examples")
    panel._progress({"event": "progress", "step": 3, "total_steps": 12, "epoch": 1,
                     "loss": 0.7, "eta_s": 95})
    assert panel.progress.text() == "25% · epoch 1 · ETA 1m 35s"
    message = ("GPU memory full at 16 examples per step: continuing with 8 per step (same "
               "results, gradient accumulation 2)")
    panel._notice({"event": "memory", "micro_batch_size": 8, "message": message})
    assert panel.status.text() == message
    panel._ended({"event": "failed", "error": "CUDA out of memory",
                  "log": "/tmp/annotune-train-x.log"})
    assert "Training failed: CUDA out of memory" in panel.status.text()
    assert "/tmp/annotune-train-x.log" in panel.status.text()
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()
