"""The runs view: run list, per-class table, confusion matrix, NER per type, comparison."""

from __future__ import annotations

from PySide6.QtWidgets import QTableWidget, QTableWidgetSelectionRange

from annotune.core.plugins import registry
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
    assert view.table.item(0, 1).text() == "failed"  # newest first
    assert view.table.item(1, 7).text() == "f1 0.8200"

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
    assert comparison.item(rows["f1"], 2).text() == "-0.0700"
    assert comparison.item(rows["learning_rate"], 0).text() == "0.0001"


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
    assert view.findChild(QTableWidget, "confusion") is None
    project.close()
