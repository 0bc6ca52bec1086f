"""A run's learning curve on the Runs view: the chart, the sentence, the job that computes it.

The curve itself is computed by core/training/learning_curve_job.py in a child process of
the training environment (four trainings); ``CurveWatcher`` reads its events on a QThread
so the window never waits, and ``LearningCurvePanel`` shows a stored curve or the one being
computed.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from annotune.core.display_names import metric_title
from annotune.core.learning_curve import read_curve, verdict
from annotune.desktop import style
from annotune.desktop.chart import nice_ticks
from annotune.desktop.job_events import ChildWatcher

log = logging.getLogger("annotune.desktop")

EXPLANATION = ("Retrains this run's settings on 25, 50, 75 and 100 % of the labels, each scored "
               "on the same validation examples, to tell whether labeling more is worth it. "
               "It takes about 2.5 times as long as the run itself.")


class CurveChart(QWidget):
    """Plot the main metric against the number of labels, each point with its interval."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.points: list[dict[str, Any]] = []
        self.y_title = ""
        self.setMinimumSize(260, 170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(460, 220)

    def set_points(self, points: list[dict[str, Any]], y_title: str) -> None:
        self.points = [p for p in points if _finite(p.get("score"))]
        self.y_title = y_title
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        grid = QColor(text)
        grid.setAlpha(40)
        metrics = painter.fontMetrics()
        line_h = metrics.height()
        plot = QRectF(self.rect()).adjusted(metrics.horizontalAdvance("0.000") + 14, line_h + 8,
                                            -14, -(line_h * 2 + 8))
        painter.setPen(text)
        painter.drawText(QRectF(0, 2, self.width(), line_h), Qt.AlignmentFlag.AlignHCenter,
                         f"{self.y_title} by number of labels" if self.y_title else "")
        if not self.points or plot.width() < 20 or plot.height() < 20:
            return
        x_high = max(p["labels"] for p in self.points) * 1.05
        values = [v for p in self.points for v in (p.get("low"), p["score"], p.get("high"))
                  if _finite(v)]
        ticks = nice_ticks(min(values), max(values))
        y_low, y_high = ticks[0], ticks[-1] if ticks[-1] > ticks[0] else ticks[0] + 1

        def at(x: float, y: float) -> QPointF:  # labels start at zero: gaps are to scale
            return QPointF(plot.left() + x / x_high * plot.width(),
                           plot.bottom() - (y - y_low) / (y_high - y_low) * plot.height())

        for tick in ticks:
            y = at(0, tick).y()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text)
            painter.drawText(QRectF(0, y - line_h / 2, plot.left() - 6, line_h),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{tick:g}")
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        for point in self.points:
            x = at(point["labels"], y_low).x()
            painter.drawText(QRectF(x - 40, plot.bottom() + 2, 80, line_h),
                             Qt.AlignmentFlag.AlignHCenter, f"{point['labels']:,}")
        painter.drawText(QRectF(plot.left(), plot.bottom() + line_h + 4, plot.width(), line_h),
                         Qt.AlignmentFlag.AlignHCenter, "labeled training examples")
        colour = style.label_colour(0)
        painter.setPen(QPen(colour, 2))
        path = QPainterPath(at(self.points[0]["labels"], self.points[0]["score"]))
        for point in self.points[1:]:
            path.lineTo(at(point["labels"], point["score"]))
        painter.drawPath(path)
        for point in self.points:  # the interval: a vertical bar with short caps
            centre = at(point["labels"], point["score"])
            if _finite(point.get("low")) and _finite(point.get("high")):
                top, bottom = at(point["labels"], point["high"]), at(point["labels"],
                                                                     point["low"])
                painter.drawLine(top, bottom)
                for end in (top, bottom):
                    painter.drawLine(QPointF(end.x() - 4, end.y()), QPointF(end.x() + 4, end.y()))
            painter.setBrush(colour)
            painter.drawEllipse(centre, 3.5, 3.5)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


class CurveWatcher(ChildWatcher):
    """Follow the learning-curve child process on a worker thread."""

    what = "learning curve"

    def __init__(self, project_path: Path, run_id: int, python: str | None = None,
                 env: dict[str, str] | None = None):
        self.project_path = Path(project_path)
        self.run_id = run_id
        super().__init__(python, env)

    def launch(self) -> None:
        from annotune.core.training.learning_curve_job import LearningCurveProcess

        self.process = LearningCurveProcess(python=self.python)
        self.process.start_curve(self.project_path, self.run_id, env=self.env)


class LearningCurvePanel(QWidget):
    """Show a run's learning curve (stored, or arriving point by point) and compute it."""

    computeRequested = Signal(int)  # the run id
    stopRequested = Signal()

    def __init__(self, run: dict[str, Any], runs_dir: Path, task: Any,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.run_id = int(run["id"])
        self.runs_dir = Path(runs_dir)
        self.task = task
        self.metric_name = metric_title(task.main_metric, task)
        self.live_points: list[dict[str, Any]] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, style.SPACING, 0, 0)
        layout.setSpacing(style.SPACING)
        bar = QHBoxLayout()
        bar.addWidget(style.heading(QLabel("Learning curve")))
        bar.addStretch(1)
        self.compute_button = QPushButton("Compute &learning curve")
        self.compute_button.setObjectName("curve_compute")
        self.compute_button.setToolTip(EXPLANATION)
        self.compute_button.clicked.connect(lambda: self.computeRequested.emit(self.run_id))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("curve_stop")
        self.stop_button.clicked.connect(self.stopRequested.emit)
        bar.addWidget(self.compute_button)
        bar.addWidget(self.stop_button)
        layout.addLayout(bar)
        self.sentence = QLabel()
        self.sentence.setObjectName("curve_verdict")
        self.sentence.setWordWrap(True)
        self.sentence.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.sentence)
        self.detail = style.muted(QLabel())
        self.detail.setObjectName("curve_detail")
        self.detail.setWordWrap(True)
        layout.addWidget(self.detail)
        self.progress = QProgressBar()
        self.progress.setObjectName("curve_progress")
        self.progress.setRange(0, 1000)
        layout.addWidget(self.progress)
        self.chart = CurveChart()
        self.chart.setObjectName("curve_chart")
        layout.addWidget(self.chart, 1)
        self.show_stored()

    # -- states ----------------------------------------------------------------------------
    def show_stored(self) -> None:
        """Show the stored curve of the run, or say how to get one."""
        self._running(False)
        curve = read_curve(self.runs_dir, self.run_id)
        if curve is None:
            self.sentence.setText("Is labeling more worth it? Compute the learning curve to "
                                  "find out.")
            self.detail.setText(EXPLANATION)
            self.chart.set_points([], self.metric_name)
            self.chart.setVisible(False)
            return
        said = verdict(curve, self.metric_name)
        self.sentence.setText(said["sentence"])
        created = str(curve.get("created", ""))[:16].replace("T", " ")
        count = curve.get("train_examples")
        count = f"{count:,}" if isinstance(count, int) else "?"
        self.detail.setText(f"Computed {created} with {count} labeled training examples; "
                            f"{said['detail']}.")
        self.chart.set_points(curve["points"], self.metric_name)
        self.chart.setVisible(True)
        self.compute_button.setText("Re&compute learning curve")

    def show_event(self, event: dict[str, Any]) -> None:
        """Follow the computation of this run's curve."""
        self._running(True)
        kind = event.get("event")
        if kind == "started":
            sizes = ", ".join(f"{n:,}" for n in event.get("labels", []))
            self.live_points = []
            self.sentence.setText(f"Computing the learning curve: training on {sizes} "
                                  f"labeled examples…")
            self.detail.setText(f"Each point is scored on the same "
                                f"{event.get('validation_examples')} validation examples, on "
                                f"{event.get('device_label')}.")
        elif kind == "progress":
            self.progress.setValue(round(float(event.get("done") or 0) * 1000))
            self.progress.setFormat(f"{round(event['fraction'] * 100):g} % of the labels "
                                    f"({event['index'] + 1} of {event['points']}) · epoch "
                                    f"{event.get('epoch', '?')}")
        elif kind == "point":
            self.live_points.append(event)
            self.chart.set_points(self.live_points, self.metric_name)
            self.chart.setVisible(True)

    def show_running(self, events: list[dict[str, Any]]) -> None:
        """Replay what the running computation reported so far (the panel was rebuilt)."""
        for event in events:
            self.show_event(event)
        self._running(True)

    def show_ended(self, event: dict[str, Any]) -> None:
        """Show the finished curve, or why there is none."""
        self.show_stored()
        self.compute_button.setEnabled(True)
        kind = event.get("event")
        if kind == "cancelled":
            self.detail.setText("The learning curve was stopped; nothing was stored.")
        elif kind != "finished":
            where = f" (details in {event['log']})" if event.get("log") else ""
            self.sentence.setText(f"The learning curve failed: {event.get('error')}{where}")
            style.error_text(self.sentence)

    def set_busy_elsewhere(self, busy: bool) -> None:
        """Disable computing while another run's curve is being computed."""
        self.compute_button.setEnabled(not busy)
        if busy:
            self.compute_button.setToolTip("Another run's learning curve is being computed")

    def _running(self, running: bool) -> None:
        self.compute_button.setVisible(not running)
        self.stop_button.setVisible(running)
        self.progress.setVisible(running)
