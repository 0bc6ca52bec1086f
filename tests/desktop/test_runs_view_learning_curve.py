"""The learning curve on the Runs view: a stored curve read in words, computed from the view."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from annotune.core import learning_curve
from annotune.core.formats.base import ImportRecord
from annotune.core.plugins import registry
from annotune.desktop.learning_curve_view import CurveChart, LearningCurvePanel
from annotune.desktop.runs_view import RunsView

TEXTS = ("great pizza 🍕", "👨‍👩‍👧 loved it", "東京の映画", "Jose\u0301 says", "فيلم رائع",
         "סרט\r\nממש")


def _shown(view, name):
    """Tell whether a widget of the curve panel is shown (panels are rebuilt per selection)."""
    widget = view.findChild(QWidget, name)
    return widget is not None and widget.isVisible()


def _select(qtbot, view, row):
    """Select one run and let Qt show the details built for it (shown on the next events)."""
    view.table.selectRow(row)
    qtbot.waitUntil(lambda: all(w.isVisible() for w in view.details.children()
                                if isinstance(w, QWidget) and w.parent() is view.details))


def _view(qtbot, project):
    view = RunsView(project, registry().task(project.task_name))
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


def _stored_curve(gain: tuple[float, float, float]) -> dict:
    points = [{"fraction": f, "labels": n, "score": s, "low": s - 0.03, "high": s + 0.03}
              for f, n, s in ((0.25, 300, 0.70), (0.5, 600, 0.76), (0.75, 900, 0.79),
                              (1.0, 1200, 0.81))]
    value, low, high = gain
    return {"format": 1, "main_metric": "f1", "metric_scale": 1.0, "validation_examples": 400,
            "interval": 95, "bootstrap_samples": 300, "points": points, "train_examples": 1200,
            "created": "2025-03-01T10:00:00+00:00", "source_run": 1,
            "gain": {"from_fraction": 0.75, "to_fraction": 1.0, "value": value, "low": low,
                     "high": high}}


def test_a_stored_curve_is_drawn_with_its_intervals_and_read_in_a_sentence(
        qtbot, sentiment_project):
    project = sentiment_project
    run_id = project.create_run({"epochs": 3}, "cpu")
    project.finish_run(run_id, "finished", metrics={"f1": 0.81})
    learning_curve.write_curve(project.runs_dir, run_id, _stored_curve((0.02, 0.008, 0.033)))
    view = _view(qtbot, project)
    verdict = view.findChild(QLabel, "curve_verdict")
    assert verdict.text() == ("Labeling more is likely to help: +2.0 points of F1 from the "
                              "last 25 % of the labels.")
    detail = view.findChild(QLabel, "curve_detail").text()
    assert "1,200 labeled training examples" in detail
    assert "95 % interval +0.8 to +3.3" in detail and "400 validation examples" in detail
    chart = view.findChild(CurveChart, "curve_chart")
    assert _shown(view, "curve_chart")
    assert [p["labels"] for p in chart.points] == [300, 600, 900, 1200]
    assert chart.points[0]["low"] == pytest.approx(0.67)
    chart.grab()  # paints without error
    button = view.findChild(QPushButton, "curve_compute")
    assert _shown(view, "curve_compute") and "Recompute" in button.text().replace("&", "")
    assert not _shown(view, "curve_stop")


def test_a_run_without_a_curve_says_what_it_would_tell(qtbot, sentiment_project):
    project = sentiment_project
    finished = project.create_run({"epochs": 3}, "cpu")
    project.finish_run(finished, "finished", metrics={"f1": 0.7})
    failed = project.create_run({"epochs": 3}, "cpu")
    project.finish_run(failed, "failed", error="out of memory")
    view = _view(qtbot, project)  # the newest run, the failed one, is selected
    assert view.findChild(LearningCurvePanel) is None
    _select(qtbot, view, 1)
    assert view.findChild(QLabel, "curve_verdict").text().startswith(
        "Is labeling more worth it?")
    assert not _shown(view, "curve_chart")


@pytest.fixture
def labeled_project(tmp_path, make_project, tiny_base_model, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the child's: one thread on a busy machine
    project = make_project(tmp_path / "reviews.annotune", "text-classification", ("neg", "pos"),
                           max_length=32)
    records = [ImportRecord(fields={"text": f"{TEXTS[i % 6]} {'good' if i % 2 else 'bad'} {i}"},
                            annotation={"label": "pos" if i % 2 else "neg"}, line=i + 1,
                            split="validation" if i >= 40 else None) for i in range(52)]
    project.add_examples(records, source="test")
    run_id = project.create_run({"epochs": 2, "learning_rate": 5e-3, "batch_size": 8,
                                 "device": "cpu", "base_model": str(tiny_base_model)}, "cpu")
    project.finish_run(run_id, "finished", metrics={"f1": 0.6})
    other = project.create_run({"epochs": 1}, "cpu")
    project.finish_run(other, "finished", metrics={"f1": 0.5})
    yield project
    project.close()


def test_the_view_computes_the_curve_in_a_child_and_shows_it(qtbot, labeled_project):
    project = labeled_project
    view = _view(qtbot, project)
    _select(qtbot, view, 1)  # run 1 (newest first)
    qtbot.mouseClick(view.findChild(QPushButton, "curve_compute"), Qt.MouseButton.LeftButton)
    assert view.curve_watcher is not None and view.curve_watcher.run_id == 1
    assert _shown(view, "curve_stop")
    qtbot.waitUntil(lambda: any(e.get("event") == "point" for e in view.curve_events),
                    timeout=120_000)
    # another run's panel cannot start a second computation; coming back shows the progress
    _select(qtbot, view, 0)
    assert not view.findChild(QPushButton, "curve_compute").isEnabled()
    _select(qtbot, view, 1)
    assert _shown(view, "curve_stop")
    assert view.findChild(CurveChart, "curve_chart").points
    qtbot.waitUntil(lambda: view.curve_watcher is None, timeout=180_000)
    assert view.last_curve_event["event"] == "finished", view.last_curve_event
    stored = learning_curve.read_curve(project.runs_dir, 1)
    assert [p["labels"] for p in stored["points"]] == [10, 20, 30, 40]
    assert stored["validation_examples"] == 12
    verdict = view.findChild(QLabel, "curve_verdict").text()
    assert "from the last 25 % of the labels" in verdict
    assert len(view.findChild(CurveChart, "curve_chart").points) == 4
    assert [r["id"] for r in project.runs()] == [1, 2]  # the points are no runs


def test_stopping_the_curve_stores_nothing(qtbot, labeled_project):
    project = labeled_project
    view = _view(qtbot, project)
    _select(qtbot, view, 1)
    qtbot.mouseClick(view.findChild(QPushButton, "curve_compute"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(e.get("event") == "started" for e in view.curve_events),
                    timeout=120_000)
    qtbot.mouseClick(view.findChild(QPushButton, "curve_stop"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.curve_watcher is None, timeout=60_000)
    assert view.last_curve_event["event"] == "cancelled", view.last_curve_event
    assert learning_curve.read_curve(project.runs_dir, 1) is None
    assert "nothing was stored" in view.findChild(QLabel, "curve_detail").text()
    assert view.findChild(QPushButton, "curve_compute").isEnabled()
