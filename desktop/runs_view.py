"""The runs view: every training run, its metrics in detail, two runs side by side."""

from __future__ import annotations

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

from annotune.desktop.base_models import describe_choice
from annotune.desktop.metrics_tables import (
    confusion_table,
    fill_key_values,
    format_value,
    per_class,
    per_class_table,
    scalar_metrics,
)

RUN_COLUMNS = ("Run", "Status", "Started", "Base model", "Epochs", "LR", "Batch", "Main metric",
               "Time")
SETTINGS_SHOWN = ("base_model", "epochs", "learning_rate", "batch_size", "warmup_ratio",
                  "weight_decay", "seed", "freeze_encoder", "max_length", "device")


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
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Select a run for its details; Ctrl+click a second one to compare."))
        bar.addStretch(1)
        self.export_button = QPushButton("Export bundle…")
        self.export_button.setToolTip("Export the selected finished run as an ONNX bundle")
        self.export_button.clicked.connect(self.export_selected)
        bar.addWidget(self.export_button)
        layout.addLayout(bar)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(RUN_COLUMNS))
        self.table.setObjectName("runs_table")
        self.table.setHorizontalHeaderLabels(list(RUN_COLUMNS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
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
            duration = run.get("duration_s")
            values = (run["id"], run["status"], str(run.get("created", ""))[:16].replace("T", " "),
                      describe_choice(config.get("base_model")), config.get("epochs"),
                      config.get("learning_rate"), config.get("batch_size"),
                      f"{main} {format_value(metrics[main])}" if main in metrics else "",
                      f"{duration:.0f} s" if isinstance(duration, int | float) else "")
            for column, value in enumerate(values):
                item = QTableWidgetItem(format_value(value) if not isinstance(value, str)
                                        else value)
                item.setData(Qt.ItemDataRole.UserRole, run["id"])
                if run.get("error"):
                    item.setToolTip(str(run["error"]))
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
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
        ids = self.selected_ids()
        finished = [i for i in ids if self._run(i)["status"] == "finished"]
        self.export_button.setEnabled(len(finished) == 1)
        if len(ids) >= 2:
            self._show_comparison(self._run(ids[0]), self._run(ids[1]))
        elif ids:
            self._show_run(self._run(ids[0]))
        else:
            self.details_layout.addWidget(QLabel("No runs yet: label examples, then Train."))

    def _heading(self, text: str) -> None:
        label = QLabel(text)
        font = label.font()
        font.setBold(True)
        label.setFont(font)
        self.details_layout.addWidget(label)

    def _show_run(self, run: dict[str, Any]) -> None:
        metrics = run.get("metrics") or {}
        config = run.get("config") or {}
        row = QHBoxLayout()
        left = QVBoxLayout()
        self._heading(f"Run {run['id']} — {run['status']}"
                      + (f": {run['error']}" if run.get("error") else ""))
        scalars = scalar_metrics(metrics)
        summary = QTableWidget()
        summary.setObjectName("run_summary")
        summary.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        fill_key_values(summary, [(k, [v]) for k, v in scalars.items()]
                        + [(k, [describe_choice(config.get(k)) if k == "base_model"
                                else config.get(k)]) for k in SETTINGS_SHOWN if k in config],
                        ["value"])
        left.addWidget(summary)
        row.addLayout(left, 1)
        right = QVBoxLayout()
        if per_class(metrics):
            title = "Per type" if "per_type" in metrics else "Per class"
            label = QLabel(title)
            right.addWidget(label)
            table = per_class_table(metrics)
            table.setObjectName("per_class")
            right.addWidget(table)
        matrix = confusion_table(metrics)
        if matrix is not None:
            matrix.setObjectName("confusion")
            right.addWidget(QLabel("Confusion matrix (rows: true, columns: predicted)"))
            right.addWidget(matrix)
        if right.count():
            row.addLayout(right, 2)
        holder = QWidget()
        holder.setLayout(row)
        self.details_layout.addWidget(holder, 1)

    def _show_comparison(self, a: dict[str, Any], b: dict[str, Any]) -> None:
        self._heading(f"Run {a['id']} vs run {b['id']}")
        ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
        ca, cb = a.get("config") or {}, b.get("config") or {}
        rows: list[tuple[str, list[Any]]] = []
        for key in dict.fromkeys([*scalar_metrics(ma), *scalar_metrics(mb)]):
            va, vb = ma.get(key), mb.get(key)
            delta = vb - va if isinstance(va, int | float) and isinstance(vb, int | float) \
                else None
            rows.append((key, [va, vb, delta]))
        for name in dict.fromkeys([*per_class(ma), *per_class(mb)]):
            fa = per_class(ma).get(name, {}).get("f1")
            fb = per_class(mb).get(name, {}).get("f1")
            delta = fb - fa if fa is not None and fb is not None else None
            rows.append((f"f1 · {name}", [fa, fb, delta]))
        for key in SETTINGS_SHOWN:
            if ca.get(key) != cb.get(key):
                rows.append((key, [ca.get(key), cb.get(key), None]))
        table = QTableWidget()
        table.setObjectName("comparison")
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        fill_key_values(table, rows, [f"run {a['id']}", f"run {b['id']}", "difference"])
        self.details_layout.addWidget(table, 1)

    def export_selected(self) -> None:
        """Open the export dialog for the selected finished run."""
        from annotune.desktop.export_dialog import ExportDialog

        ids = [i for i in self.selected_ids() if self._run(i)["status"] == "finished"]
        if not ids:
            finished = [r for r in self.runs if r["status"] == "finished"]
            if not finished:
                self.details_layout.addWidget(QLabel("No finished run to export yet."))
                return
            ids = [finished[0]["id"]]
        run = self._run(ids[0])
        dialog = ExportDialog(run, Path(self.project.runs_dir), self)
        dialog.exported.connect(self.exported)
        dialog.open()
        self.dialog = dialog
