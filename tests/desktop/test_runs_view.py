"""The runs view: run list, per-class table, confusion matrix, NER per type, comparison."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetSelectionRange

from annotune.core.plugins import registry
from annotune.desktop import style
from annotune.desktop.runs_view import RunsView


def _classification_metrics(f1: float) -> dict:
    return {"f1": f1, "accuracy": 0.8, "macro_f1": f1,
            "per_label": {"neg": {"precision": 0.9, "recall": 0.7, "f1": 0.79, "support": 10},
                          "pos": {"precision": 0.7, "recall": 0.9, "f1": f1, "support": 10}},
            "confusion_matrix": {"labels": ["neg", "pos"], "matrix": [[7, 3], [1, 9]]}}


def _view(qtbot, project):
    view = RunsView(project, registry().task(project.task_name))
    qtbot.addWidget(view)
    view.show()
    return view


def test_run_details_and_comparison(qtbot, sentiment_project):
    project = sentiment_project
    for f1, lr in ((0.75, 1e-4), (0.82, 5e-5)):
        run_id = project.create_run({"epochs": 3, "learning_rate": lr, "batch_size": 16}, "cpu")
        project.finish_run(run_id, "finished", metrics=_classification_metrics(f1))
    failed = project.create_run({"epochs": 3}, "cpu")
    project.finish_run(failed, "failed", error="out of memory")
    view = _view(qtbot, project)
    assert view.table.rowCount() == 3
    assert view.table.item(0, 1).text() == "Failed"  # newest first
    assert view.table.horizontalHeaderItem(7).text() == "F1"
    assert view.table.item(1, 7).text() == "0.8200"

    view.table.selectRow(1)
    confusion = view.findChild(QTableWidget, "confusion")
    assert confusion.item(0, 1).text() == "3" and confusion.item(1, 1).text() == "9"
    per_class = view.findChild(QTableWidget, "per_class")
    assert per_class.verticalHeaderItem(1).text() == "pos"
    assert view.export_button.isEnabled()

    view.table.clearSelection()
    view.table.selectRow(1)
    view.table.setRangeSelected(QTableWidgetSelectionRange(2, 0, 2, 0), True)
    comparison = view.findChild(QTableWidget, "comparison")
    rows = {comparison.verticalHeaderItem(r).text(): r for r in range(comparison.rowCount())}
    # run 1 scored 0.75, run 2 0.82: the change from run 1 to run 2 is +0.07
    assert comparison.horizontalHeaderItem(0).text() == "Run 1"
    assert comparison.horizontalHeaderItem(2).text() == "Change (run 2 − run 1)"
    assert comparison.item(rows["F1"], 2).text() == "+0.0700"
    assert comparison.item(rows["Learning rate"], 0).text() == "0.0001"
    assert comparison.item(rows["Learning rate"], 1).text() == "0.00005"


def test_ner_runs_show_per_type_f1(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER", "LOC"))
    run_id = project.create_run({"epochs": 2}, "cpu")
    project.finish_run(run_id, "finished", metrics={
        "f1": 0.6, "precision": 0.5, "recall": 0.75,
        "per_type": {"LOC": {"precision": 0.4, "recall": 1.0, "f1": 0.57, "support": 2},
                     "PER": {"precision": 0.6, "recall": 0.6, "f1": 0.6, "support": 5}}})
    view = _view(qtbot, project)
    per_type = view.findChild(QTableWidget, "per_class")
    assert per_type.verticalHeaderItem(0).text() == "LOC"
    assert per_type.item(1, 2).text() == "0.6000"
    assert per_type.horizontalHeaderItem(2).text() == "F1"
    assert view.findChild(QTableWidget, "confusion") is None
    project.close()


def _comparison_rows(view):
    table = view.findChild(QTableWidget, "comparison")
    return table, {table.verticalHeaderItem(r).text(): r for r in range(table.rowCount())}


@pytest.mark.parametrize("selection_order", [(0, 1), (1, 0)])
def test_the_change_column_is_the_newer_run_minus_the_older_whatever_the_selection(
        qtbot, sentiment_project, selection_order):
    project = sentiment_project
    for f1, loss in ((0.90, 0.30), (0.80, 0.45)):  # the newer run is worse
        run_id = project.create_run({"epochs": 3}, "cpu")
        project.finish_run(run_id, "finished", metrics={"f1": f1, "validation_loss": loss})
    view = _view(qtbot, project)
    view.table.clearSelection()
    for row in selection_order:
        view.table.setRangeSelected(QTableWidgetSelectionRange(row, 0, row, 0), True)
    table, rows = _comparison_rows(view)
    assert table.horizontalHeaderItem(2).text() == "Change (run 2 − run 1)"
    assert table.item(rows["F1"], 0).text() == "0.9000"
    assert table.item(rows["F1"], 2).text() == "-0.1000"
    assert table.item(rows["Validation loss"], 2).text() == "+0.1500"
    # both changes are for the worse: a lower F1, a higher loss
    worse = style.change_colour(False).name()
    assert table.item(rows["F1"], 2).foreground().color().name() == worse
    assert table.item(rows["Validation loss"], 2).foreground().color().name() == worse


def test_views_name_metrics_and_options_in_words_with_the_key_as_tooltip(
        qtbot, sentiment_project, tmp_path):
    project = sentiment_project
    run_dir = tmp_path / "runs" / "1"
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"task": "text-classification", "device": {
        "device": "cuda", "precision": "bf16",
        "precision_probe": {"fp32_ms": 14.8, "bf16_ms": 10.0, "length": 15, "batch": 8,
                            "chosen": "bf16", "device": "cuda"}}}), encoding="utf-8")
    run_id = project.create_run({"epochs": 3, "warmup_ratio": 0.1, "learning_rate": 3e-5},
                                "cuda")
    project.finish_run(run_id, "finished", metrics={"f1": 0.8, "macro_f1": 0.8,
                                                    "accuracy": 0.9},
                       artifact_dir=str(run_dir / "model"))
    view = _view(qtbot, project)
    summary = view.findChild(QTableWidget, "run_summary")
    titles = {summary.verticalHeaderItem(r).text(): r for r in range(summary.rowCount())}
    assert {"Macro F1", "Accuracy", "Warm-up share", "Learning rate", "Precision"} <= set(titles)
    assert not any("_" in title for title in titles), titles
    assert "warmup_ratio" in summary.verticalHeaderItem(titles["Warm-up share"]).toolTip()
    assert summary.item(titles["Learning rate"], 0).text() == "0.00003"
    precision = summary.item(titles["Precision"], 0)
    assert precision.text() == ("Half precision (bf16) was 1.48× faster on this machine, "
                                "so training used it")
    assert "14.8 ms" in precision.toolTip() and "15 tokens" in precision.toolTip()


def test_an_empty_project_says_how_to_get_a_run(qtbot, sentiment_project):
    view = _view(qtbot, sentiment_project)
    empty = view.findChild(QLabel, "runs_empty")
    assert empty is not None and "Train" in empty.text()
    assert not view.table.isVisible() and not view.export_button.isEnabled()


def test_a_run_shows_how_sure_its_validation_score_is(qtbot, sentiment_project):
    project = sentiment_project
    perfect = project.create_run({"epochs": 3}, "cpu")
    project.finish_run(perfect, "finished", metrics={
        "f1": 1.0, "accuracy": 1.0,
        "uncertainty": {"metric": "f1", "standard_error": None, "low": 0.831566, "high": 1.0,
                        "examples": 20, "draws": 200, "method": "exact binomial"}})
    view = _view(qtbot, project)
    view.table.selectRow(0)
    summary = view.findChild(QTableWidget, "run_summary")
    rows = {summary.verticalHeaderItem(r).text(): r for r in range(summary.rowCount())}
    assert rows["F1, 95 % interval"] == rows["F1"] + 1  # right under the score it qualifies
    assert summary.item(rows["F1, 95 % interval"], 0).text() == "0.8316 – 1.0000"
    interval = summary.item(rows["F1, 95 % interval"], 0)
    assert "20 validation examples" in interval.toolTip()
    assert interval.textAlignment() == summary.item(rows["F1"], 0).textAlignment()
    assert "Accuracy, 95 % interval" not in rows  # only the metric the run measured it for
