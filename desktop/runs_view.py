"""The runs view: every training run, its metrics in detail, two runs side by side."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from annotune.core.display_names import (
    metric_title,
    metric_tooltip,
    option_title,
    option_tooltip,
    precision_details,
    precision_sentence,
    precision_title,
    status_title,
)
from annotune.core.errors import AnnotuneError
from annotune.core.run_record import RunRecord
from annotune.desktop import style
from annotune.desktop.base_models import describe_choice
from annotune.desktop.learning_curve_view import CurveWatcher, LearningCurvePanel
from annotune.desktop.metrics_tables import (
    Row,
    change,
    confusion_table,
    fill_rows,
    format_duration,
    format_value,
    metric_rows,
    per_class,
    per_class_table,
    scalar_metrics,
)

SETTINGS_SHOWN = ("base_model", "epochs", "learning_rate", "batch_size", "warmup_ratio",
                  "weight_decay", "seed", "freeze_encoder", "max_length", "device")
EMPTY_RUNS = ("No training runs yet.<br>Label some examples, then train a model on the "
              "<b>Train</b> tab (<b>Model ▸ Train…</b>). Each run appears here with its "
              "scores, and a finished one can be exported as a bundle.")


_RUNNING: set[CurveWatcher] = set()


def run_columns(task: Any) -> tuple[str, ...]:
    """Return the headers of the runs table (the task's main metric by its title)."""
    return ("Run", "Status", "Started", "Base model", "Epochs", option_title("learning_rate"),
            option_title("batch_size"), metric_title(task.main_metric, task), "Time")


def read_run_record(run: Mapping[str, Any]) -> RunRecord | None:
    """Return the run's run.json (device, precision probe, …) or None when it is unreadable."""
    artifact = run.get("artifact_dir")
    if not artifact:
        return None
    folder = Path(artifact)
    for candidate in (folder, folder.parent):
        try:
            return RunRecord.read(candidate)
        except AnnotuneError:
            continue
    return None


def precision_row(record: RunRecord | None) -> Row | None:
    """Say in words which precision the run trained in and why (the probe's figures as tip)."""
    if record is None:
        return None
    precision, probe = record.precision()
    sentence = precision_sentence(probe)
    if sentence:
        return Row("Precision", [sentence], precision_details(probe))
    if precision:
        return Row("Precision", [precision_title(precision)], f"precision {precision}")
    return None


def _clear(layout: QVBoxLayout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget()
        if widget is not None:
            widget.setParent(None)  # out of findChild's reach at once
            widget.deleteLater()


class RunsView(QWidget):
    """List runs; select one for its details, two to compare; export a finished one."""

    exported = Signal(Path)  # a bundle folder written by the export dialog

    def __init__(self, project: Any, task: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.task = task
        self.runs: list[dict[str, Any]] = []
        # the learning curve being computed (one at a time; it outlives selection changes)
        self.curve_watcher: CurveWatcher | None = None
        self.curve_events: list[dict[str, Any]] = []
        self.curve_panel: LearningCurvePanel | None = None
        layout = style.padded(QVBoxLayout(self))
        bar = QHBoxLayout()
        bar.addWidget(style.muted(QLabel(
            "Select a run for its details; Ctrl+click a second one to compare them.")))
        bar.addStretch(1)
        self.export_button = style.primary(QPushButton("E&xport bundle…"))
        self.export_button.setToolTip("Export the selected finished run as an ONNX bundle")
        self.export_button.clicked.connect(self.export_selected)
        bar.addWidget(self.export_button)
        layout.addLayout(bar)
        splitter = QSplitter(Qt.Orientation.Vertical)
        columns = run_columns(task)
        self.table = QTableWidget(0, len(columns))
        self.table.setObjectName("runs_table")
        self.table.setHorizontalHeaderLabels(list(columns))
        self.table.horizontalHeaderItem(7).setToolTip(metric_tooltip(task.main_metric, task))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # the base model's name takes the spare width; the figures stay beside each other
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        self.table.itemSelectionChanged.connect(self.show_selection)
        splitter.addWidget(self.table)
        self.details = QWidget()
        self.details_layout = QVBoxLayout(self.details)
        self.details_layout.setContentsMargins(0, 0, 0, 0)
        splitter.addWidget(self.details)
        splitter.setSizes([200, 400])
        layout.addWidget(splitter, 1)
        self.refresh()

    def refresh(self) -> None:
        """Reload runs from the store, keeping the selection."""
        selected = self.selected_ids()
        self.runs = list(reversed(self.project.runs()))  # newest first
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.runs))
        main = self.task.main_metric
        for row, run in enumerate(self.runs):
            config = run.get("config") or {}
            metrics = run.get("metrics") or {}
            values = (run["id"], status_title(run["status"]),
                      str(run.get("created", ""))[:16].replace("T", " "),
                      describe_choice(config.get("base_model")), config.get("epochs"),
                      config.get("learning_rate"), config.get("batch_size"),
                      metrics.get(main), format_duration(run.get("duration_s")))
            for column, value in enumerate(values):
                item = QTableWidgetItem(format_value(value) if not isinstance(value, str)
                                        else value)
                item.setData(Qt.ItemDataRole.UserRole, run["id"])
                if run.get("error"):
                    item.setToolTip(str(run["error"]))
                if column == 1:
                    item.setForeground(style.state_colour(run["status"]))
                elif isinstance(value, int | float) or column == 8:  # figures line up right
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        self.table.setVisible(bool(self.runs))
        for row, run in enumerate(self.runs):
            if run["id"] in selected:
                self.table.selectRow(row)
        if not selected and self.runs:
            self.table.selectRow(0)
        self.show_selection()

    def selected_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        return [self.runs[row]["id"] for row in rows if row < len(self.runs)]

    def _run(self, run_id: int) -> dict[str, Any]:
        return next(run for run in self.runs if run["id"] == run_id)

    def show_selection(self) -> None:
        _clear(self.details_layout)
        self.curve_panel = None
        ids = self.selected_ids()
        finished = [i for i in ids if self._run(i)["status"] == "finished"]
        self.export_button.setEnabled(len(finished) == 1)
        if len(ids) >= 2:
            older, newer = sorted(ids[:2])  # a change reads from the older run to the newer
            self._show_comparison(self._run(older), self._run(newer))
        elif ids:
            self._show_run(self._run(ids[0]))
        else:
            empty = style.empty_state(QLabel(EMPTY_RUNS if not self.runs else
                                             "Select a run to see its details."))
            empty.setObjectName("runs_empty")
            self.details_layout.addWidget(empty, 1)

    def _heading(self, text: str) -> None:
        self.details_layout.addWidget(style.heading(QLabel(text)))

    def _show_run(self, run: dict[str, Any]) -> None:
        metrics = run.get("metrics") or {}
        config = run.get("config") or {}
        row = QHBoxLayout()
        left = QVBoxLayout()
        self._heading(f"Run {run['id']} — {status_title(run['status']).lower()}"
                      + (f": {run['error']}" if run.get("error") else ""))
        rows = metric_rows(metrics, self.task)
        rows += [Row(option_title(key),
                     [describe_choice(config.get(key)) if key == "base_model"
                      else config.get(key)], option_tooltip(key))
                 for key in SETTINGS_SHOWN if key in config]
        precision = precision_row(read_run_record(run))
        if precision is not None:
            rows.append(precision)
        summary = QTableWidget()
        summary.setObjectName("run_summary")
        summary.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        fill_rows(summary, rows, ["Value"])
        left.addWidget(summary)
        row.addLayout(left, 1)
        right = QVBoxLayout()
        if per_class(metrics):
            title = metric_title("per_type" if "per_type" in metrics else "per_label", self.task)
            right.addWidget(style.muted(QLabel(title)))
            table = per_class_table(metrics, task=self.task)
            table.setObjectName("per_class")
            right.addWidget(table)
        matrix = confusion_table(metrics)
        if matrix is not None:
            matrix.setObjectName("confusion")
            right.addWidget(style.muted(QLabel("Confusion matrix (rows: true label, columns: "
                                               "predicted label)")))
            right.addWidget(matrix)
        if right.count():
            row.addLayout(right, 2)
        holder = QWidget()
        holder.setLayout(row)
        self.details_layout.addWidget(holder, 1)
        if run["status"] == "finished":
            self._show_curve(run)

    # -- the learning curve ------------------------------------------------------------------
    def _show_curve(self, run: dict[str, Any]) -> None:
        panel = LearningCurvePanel(run, Path(self.project.runs_dir), self.task)
        panel.computeRequested.connect(self.compute_curve)
        panel.stopRequested.connect(self.stop_curve)
        watcher = self.curve_watcher
        if watcher is not None and watcher.run_id == run["id"]:
            panel.show_running(self.curve_events)
        elif watcher is not None:
            panel.set_busy_elsewhere(True)
        self.curve_panel = panel
        self.details_layout.addWidget(panel, 1)

    def compute_curve(self, run_id: int) -> None:
        """Compute a run's learning curve in a child process of the training environment."""
        if self.curve_watcher is not None:
            return
        from annotune.desktop.training_env import with_interpreter

        if self.curve_panel is not None:
            self.curve_panel.compute_button.setEnabled(False)
        with_interpreter(self, lambda interpreter: self._start_curve(run_id, interpreter),
                         cancelled=self._curve_not_started)

    def _curve_not_started(self) -> None:
        if self.curve_panel is not None:
            self.curve_panel.compute_button.setEnabled(True)

    def _start_curve(self, run_id: int, interpreter: Any) -> None:
        from annotune.core import training_env

        if self.curve_watcher is not None:
            return
        watcher = CurveWatcher(Path(self.project.path), run_id, python=interpreter.python,
                               env=training_env.child_overrides())
        watcher.event.connect(self._curve_event)
        watcher.ended.connect(self._curve_ended)
        self.curve_watcher, self.curve_events = watcher, []
        _RUNNING.add(watcher)  # its thread must not be collected while it runs
        # closing the project stops the computation (a plain callable: called at once, not
        # queued to the watcher's thread, which is busy reading the child's events)
        self.destroyed.connect(lambda *_: watcher.stop())
        if self.curve_panel is not None and self.curve_panel.run_id == run_id:
            self.curve_panel.show_running([])
        watcher.start()

    def stop_curve(self) -> None:
        """Stop the learning curve being computed (nothing is stored)."""
        if self.curve_watcher is not None:
            self.curve_watcher.stop()

    def _curve_event(self, event: dict[str, Any]) -> None:
        watcher = self.curve_watcher
        if watcher is None:
            return
        self.curve_events.append(event)
        panel = self.curve_panel
        if panel is not None and panel.run_id == watcher.run_id and event.get("event") not in (
                "finished", "failed", "cancelled"):
            panel.show_event(event)

    def _curve_ended(self, event: dict[str, Any]) -> None:
        watcher, self.curve_watcher = self.curve_watcher, None
        if watcher is None:
            return
        watcher.wait(5000)
        _RUNNING.discard(watcher)
        self.last_curve_event = event
        panel = self.curve_panel
        if panel is not None and panel.run_id == watcher.run_id:
            panel.show_ended(event)
        elif panel is not None:
            panel.set_busy_elsewhere(False)

    def _show_comparison(self, older: dict[str, Any], newer: dict[str, Any]) -> None:
        """Show two runs side by side; the change column is the newer minus the older run."""
        self._heading(f"Run {older['id']} → run {newer['id']}")
        ma, mb = older.get("metrics") or {}, newer.get("metrics") or {}
        ca, cb = older.get("config") or {}, newer.get("config") or {}
        rows: list[Row] = []
        for key in dict.fromkeys([*scalar_metrics(ma), *scalar_metrics(mb)]):
            delta, better = change(key, ma.get(key), mb.get(key))
            rows.append(Row(metric_title(key, self.task), [ma.get(key), mb.get(key), delta],
                            metric_tooltip(key, self.task), better, signed=True))
        f1_title = metric_title("f1", self.task)
        for name in dict.fromkeys([*per_class(ma), *per_class(mb)]):
            fa = per_class(ma).get(name, {}).get("f1")
            fb = per_class(mb).get(name, {}).get("f1")
            delta, better = change("f1", fa, fb)
            rows.append(Row(f"{f1_title} · {name}", [fa, fb, delta],
                            f"F1 of '{name}' alone", better, signed=True))
        for key in SETTINGS_SHOWN:
            if ca.get(key) != cb.get(key):
                rows.append(Row(option_title(key), [ca.get(key), cb.get(key), None],
                                option_tooltip(key)))
        table = QTableWidget()
        table.setObjectName("comparison")
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        fill_rows(table, rows, [f"Run {older['id']}", f"Run {newer['id']}",
                                f"Change (run {newer['id']} − run {older['id']})"])
        self.details_layout.addWidget(table, 1)

    def export_selected(self) -> None:
        """Open the export dialog for the selected finished run."""
        from annotune.desktop.export_dialog import ExportDialog

        ids = [i for i in self.selected_ids() if self._run(i)["status"] == "finished"]
        if not ids:
            finished = [r for r in self.runs if r["status"] == "finished"]
            if not finished:
                _clear(self.details_layout)
                empty = style.empty_state(QLabel(
                    "No finished run to export yet. Train one on the <b>Train</b> tab."))
                empty.setObjectName("runs_empty")
                self.details_layout.addWidget(empty, 1)
                return
            ids = [finished[0]["id"]]
        run = self._run(ids[0])
        dialog = ExportDialog(run, Path(self.project.runs_dir), self)
        dialog.exported.connect(self.exported)
        dialog.open()
        self.dialog = dialog
