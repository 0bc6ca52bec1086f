"""The train panel: base model, a few settings, one Train button, live progress and curves."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from annotune.core import training_env
from annotune.core.display_names import (
    metric_title,
    option_title,
    option_tooltip,
    precision_details,
    precision_sentence,
)
from annotune.core.errors import AnnotuneError
from annotune.core.training.config import DEVICES, PRECISIONS, TrainConfig
from annotune.desktop.base_models import BUNDLED_TITLE, cached_models
from annotune.desktop.chart import LineChart
from annotune.desktop.crash import show_error
from annotune.desktop.job_events import TrainingWatcher
from annotune.desktop.plugins import editor_registry
from annotune.desktop.training_env import with_interpreter
from annotune.desktop.worker import run_in_background

log = logging.getLogger("annotune.desktop")

ADVANCED_COLUMNS = 2  # label-and-input pairs per row: the section stays short
ADVANCED_MAX_HEIGHT = 260  # taller content scrolls, so the window fits a 1000-px screen


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def readiness(stats: dict[str, Any], task: Any) -> str:
    """Say what the project's labels allow: train now, or what to label first.

    ``stats`` is ``Project.stats()``. The annotation kind's views say the label counts
    (classification names its labels, a label without examples is one the model can never
    predict; span tasks count the entities of each type); the task adds its own advice
    (``training_advice``).
    """
    n = int(stats.get("labeled") or 0)
    if n == 0:
        return ("No labeled examples yet: label some on the Label tab (or import labeled "
                "data), then press Train.")
    counts = {str(k): int(v) for k, v in (stats.get("labels") or {}).items()}
    view = editor_registry().view(getattr(task, "annotation_kind", ""))
    detail = view.count_detail(counts) if counts else ""
    text = f"{_plural(n, 'labeled example')}{detail}"
    missing = view.missing_labels(counts)
    if n < 2:
        text += " — training needs at least 2: label a few more on the Label tab."
    elif missing:
        names = ", ".join(missing)
        text += (f" — no examples of {names} yet: label some, or the model can never "
                 f"predict {'it' if len(missing) == 1 else 'them'}.")
    else:
        text += " — ready to train."
    advice = task.training_advice(n) if hasattr(task, "training_advice") else None
    return f"{text}\n{advice}" if advice else text


def format_eta(seconds: float | None) -> str:
    """Return e.g. ``1h 02m``, ``3m 10s`` or ``12s``."""
    if seconds is None or seconds < 0:
        return "…"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


class TrainPanel(QWidget):
    """Fill a TrainConfig, run the training job in a child process, show it live."""

    runFinished = Signal(dict)  # the "finished" event (run_id, artifact_dir, metrics)
    runEnded = Signal(dict)  # the last event of any run

    def __init__(self, project: Any, task: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.task = task
        self.watcher: TrainingWatcher | None = None
        self.last_event: dict[str, Any] | None = None
        defaults = TrainConfig()
        layout = QVBoxLayout(self)

        settings_box = QGroupBox("Training settings")
        form = QFormLayout(settings_box)
        model_row = QHBoxLayout()
        self.base_model = QComboBox()
        self.base_model.setEditable(True)
        self.base_model.setObjectName("base_model")
        self.base_model.setToolTip("The bundled model, a model in the local Hugging Face cache, "
                                   "a hub id or a folder with a saved model")
        self.base_model.addItem(BUNDLED_TITLE, None)
        for hub_id in cached_models():
            self.base_model.addItem(f"{hub_id} (local cache)", hub_id)
        project_model = getattr(project, "base_model", None)
        if project_model:
            self.set_base_model(str(project_model))
        browse = QPushButton("Folder…")
        browse.setToolTip("Train from a model folder (config.json + weights + tokenizer)")
        browse.clicked.connect(self._browse)
        model_row.addWidget(self.base_model, 1)
        model_row.addWidget(browse)
        form.addRow(option_title("base_model"), model_row)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(defaults.epochs)
        self.epochs.setToolTip("Passes over the training data (the best epoch is kept)")
        form.addRow(option_title("epochs"), self.epochs)
        self.learning_rate = QDoubleSpinBox()
        self.learning_rate.setDecimals(6)
        self.learning_rate.setRange(1e-6, 1.0)
        self.learning_rate.setSingleStep(1e-5)
        self.learning_rate.setValue(defaults.learning_rate)
        self.learning_rate.setToolTip(option_tooltip("learning_rate"))
        form.addRow(option_title("learning_rate"), self.learning_rate)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 4096)
        self.batch_size.setValue(defaults.batch_size)
        self.batch_size.setToolTip(option_tooltip("batch_size"))
        form.addRow(option_title("batch_size"), self.batch_size)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        form.addRow(self.advanced_toggle)
        # the advanced settings scroll inside a capped height: opening them never pushes the
        # window past the screen, and closing them gives the room back to the charts
        content = QWidget()
        advanced_grid = QGridLayout(content)
        advanced_grid.setContentsMargins(0, 0, 0, 0)
        self.advanced_inputs: dict[str, QWidget] = {}
        self._advanced_fields(defaults, advanced_grid)
        self.advanced = QScrollArea()
        self.advanced.setObjectName("advanced_settings")
        self.advanced.setWidget(content)
        self.advanced.setWidgetResizable(True)
        self.advanced.setFrameShape(QScrollArea.Shape.NoFrame)
        self.advanced.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.advanced.setMaximumHeight(min(content.sizeHint().height() + 2, ADVANCED_MAX_HEIGHT))
        self.advanced.setVisible(False)
        form.addRow(self.advanced)
        self.device_label = QLabel("checking…")
        self.device_label.setObjectName("device")
        form.addRow("Device", self.device_label)
        layout.addWidget(settings_box)

        buttons = QHBoxLayout()
        self.train_button = QPushButton("&Train")
        self.train_button.setToolTip("Fine-tune on the labeled examples")
        self.train_button.clicked.connect(self.train)
        self.stop_button = QPushButton("&Stop")
        self.stop_button.setToolTip("Stop training (the run is recorded as cancelled)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setObjectName("train_status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.progress, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        charts = QGridLayout()
        self.loss_chart = LineChart("Training loss", "step")
        self.metric_chart = LineChart("Validation metrics", "epoch", unit_range=True)
        charts.addWidget(self.loss_chart, 0, 0)
        charts.addWidget(self.metric_chart, 0, 1)
        layout.addLayout(charts, 1)
        self._described = False
        self._height_before_advanced: int | None = None

    def panel_shown(self) -> None:
        """Describe the device the first time the panel is shown; count the labels each time.

        Describing it imports torch (seconds) and counting reads every annotation: only once
        someone looks at this panel, never while a project opens.
        """
        if not self._described:
            self._described = True
            self.describe_device()
        self.show_readiness()

    def show_readiness(self) -> None:
        """Show how many examples are labeled and whether that is enough (when idle).

        Counting per label reads every annotation (a second on a million): it runs on a
        worker thread with a connection of its own, and the text follows when it is done.
        """
        if self._busy_or_done():
            return
        path = Path(self.project.path)

        def count() -> dict[str, Any]:
            from annotune.core.store import Project

            with Project.open(path) as project:
                return project.stats()

        def shown(stats: dict[str, Any]) -> None:
            if isValid(self.status) and not self._busy_or_done():
                self.status.setText(readiness(stats, self.task))
                self.status.setToolTip("")

        def failed(error: BaseException) -> None:  # the counts are a courtesy, never a block
            log.warning("could not count the labeled examples: %s", error)

        if not self.status.text():
            self.status.setText("Counting the labeled examples…")
        run_in_background(count, shown, failed)

    def _busy_or_done(self) -> bool:
        """A run's progress or outcome is showing: it stays until the next run."""
        return self.watcher is not None or self.last_event is not None

    # -- settings --------------------------------------------------------------------------
    def _advanced_fields(self, defaults: TrainConfig, grid: QGridLayout) -> None:
        shown = {"epochs", "learning_rate", "batch_size", "base_model"}
        for item in fields(TrainConfig):
            if item.name in shown:
                continue
            value = getattr(defaults, item.name)
            widget: QWidget
            if item.name == "device":
                widget = QComboBox()
                widget.addItems(list(DEVICES))
                widget.setCurrentText(str(value))
                widget.currentTextChanged.connect(lambda _t: self.describe_device())
            elif item.name == "precision":
                widget = QComboBox()
                widget.addItems(list(PRECISIONS))
                widget.setCurrentText(str(value))
            elif item.name == "compile":
                widget = QComboBox()
                widget.addItems(["auto", "on", "off"])
            elif isinstance(value, bool):
                widget = QCheckBox()
                widget.setChecked(value)
            elif isinstance(value, int) or item.name == "max_length":
                widget = QSpinBox()
                widget.setRange(0, 1_000_000)
                widget.setValue(int(value or 0))
                if item.name == "max_length":
                    widget.setSpecialValueText("project setting")
            elif isinstance(value, float):
                widget = QDoubleSpinBox()
                widget.setDecimals(4)
                widget.setRange(0.0, 1000.0)
                widget.setSingleStep(0.01)
                widget.setValue(value)
            else:
                continue
            widget.setToolTip(option_tooltip(item.name))
            label = QLabel(option_title(item.name))
            label.setToolTip(option_tooltip(item.name))
            label.setBuddy(widget)
            row, column = divmod(len(self.advanced_inputs), ADVANCED_COLUMNS)
            grid.addWidget(label, row, 2 * column)
            grid.addWidget(widget, row, 2 * column + 1)
            self.advanced_inputs[item.name] = widget

    def _toggle_advanced(self, shown: bool) -> None:
        window = self.window()
        if shown:
            self._height_before_advanced = window.height()
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown
                                          else Qt.ArrowType.RightArrow)
        before = getattr(self, "_height_before_advanced", None)
        if not shown and before is not None and window.isWindow() and not (
                window.isMaximized() or window.isFullScreen()):
            # opening grew the window to fit the settings: closing gives the height back
            if window.height() > before:
                # once the layouts have taken the settings out (next turn of the event loop)
                QTimer.singleShot(0, lambda: self._shrink_to(window, before))
            self._height_before_advanced = None

    def _shrink_to(self, window: QWidget, height: int) -> None:
        if not window.isVisible() or window.isMaximized() or window.isFullScreen():
            return
        widget = self.advanced.parentWidget()
        while widget is not None:  # recompute the minimum sizes from the settings up
            if widget.layout() is not None:
                widget.layout().activate()
            widget = None if widget is window else widget.parentWidget()
        window.resize(window.width(), max(height, window.minimumSizeHint().height()))

    def set_base_model(self, value: str) -> None:
        """Select (or add) a base model by hub id or folder."""
        for index in range(self.base_model.count()):
            if self.base_model.itemData(index) == value:
                self.base_model.setCurrentIndex(index)
                return
        self.base_model.addItem(value, value)
        self.base_model.setCurrentIndex(self.base_model.count() - 1)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Base model folder")
        if folder:
            self.set_base_model(folder)

    def base_model_value(self) -> str | None:
        text = self.base_model.currentText().strip()
        index = self.base_model.currentIndex()
        if index >= 0 and self.base_model.itemText(index) == text:
            return self.base_model.itemData(index)
        return text or None

    def config(self) -> TrainConfig:
        """Build the TrainConfig from the form (AnnotuneError on an impossible value)."""
        values: dict[str, Any] = {"base_model": self.base_model_value(),
                                  "epochs": self.epochs.value(),
                                  "learning_rate": self.learning_rate.value(),
                                  "batch_size": self.batch_size.value()}
        for name, widget in self.advanced_inputs.items():
            if isinstance(widget, QComboBox):
                text = widget.currentText()
                values[name] = {"on": True, "off": False}.get(text, text)
            elif isinstance(widget, QCheckBox):
                values[name] = widget.isChecked()
            elif isinstance(widget, QSpinBox | QDoubleSpinBox):
                values[name] = widget.value()
        if not values.get("max_length"):
            values["max_length"] = None
        return TrainConfig.from_dict(values)

    def describe_device(self) -> None:
        """Show where training will run (torch is imported on a worker thread)."""
        try:
            config = self.config()
        except AnnotuneError as error:
            self.device_label.setText(str(error))
            return

        def describe() -> str:
            from annotune.desktop.training_env import find_interpreter

            interpreter, _reasons = find_interpreter()
            if interpreter is None:  # the frozen app has no torch of its own
                return "training is not enabled yet: Train sets it up"
            return training_env.describe_device(interpreter, config)

        def shown(text: str) -> None:
            if isValid(self.device_label):  # the panel may be gone (its project closed)
                self.device_label.setText(text)

        def failed(error: BaseException) -> None:
            shown(f"unavailable: {error}")

        run_in_background(describe, shown, failed)

    # -- running ---------------------------------------------------------------------------
    def running(self) -> bool:
        return self.watcher is not None

    def train(self) -> None:
        """Start a run in a child process; events arrive as signals."""
        if self.watcher is not None:
            return
        try:
            config = self.config()
        except AnnotuneError as error:
            show_error(self, error)
            return
        self.train_button.setEnabled(False)
        self.status.setText("Looking for the training environment…")
        with_interpreter(self, lambda interpreter: self._start(config, interpreter),
                         cancelled=self._not_enabled)

    def _not_enabled(self) -> None:
        self.train_button.setEnabled(True)
        self.status.setText("Training needs PyTorch: press Train to set it up.")

    def _start(self, config: TrainConfig, interpreter: Any) -> None:
        """Run the job with the training environment's Python (never torch in this process)."""
        if self.watcher is not None:
            return
        self.loss_chart.clear()
        self.metric_chart.clear()
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.status.setText("Starting the training process…")
        self.train_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        watcher = TrainingWatcher(Path(self.project.path), config, python=interpreter.python,
                                  env=training_env.child_overrides())
        watcher.started.connect(self._started)
        watcher.progress.connect(self._progress)
        watcher.metrics.connect(self._metrics)
        watcher.notice.connect(self._notice)
        watcher.ended.connect(self._ended)
        self.watcher = watcher
        watcher.start()

    def stop(self) -> None:
        """Stop the running job (no-op when idle)."""
        if self.watcher is not None:
            self.status.setText("Stopping…")
            self.watcher.stop()

    def _started(self, event: dict) -> None:
        device = event.get("device")
        if isinstance(device, dict):
            device = f"{device.get('device')} ({device.get('name')}, {device.get('precision')})"
        counts = ""
        if event.get("train_examples") is not None:
            counts = (f" · {event['train_examples']} training and "
                      f"{event.get('validation_examples', 0)} validation examples")
        text = f"Training run {event.get('run_id')} on {device}{counts}"
        advice = self.task.training_advice(int(event.get("train_examples") or 0)) \
            if event.get("train_examples") is not None else None
        self.status.setText(f"{text}\n{advice}" if advice else text)

    def _notice(self, event: dict) -> None:
        """Show what the run decided on its own: the measured precision, a smaller batch.

        The precision is said in words; the probe's raw timings go to the tooltip.
        """
        probe = event.get("probe") if event.get("event") == "precision" else None
        sentence = precision_sentence(probe)
        if sentence:
            self.status.setText(f"{sentence}.")
            self.status.setToolTip(precision_details(probe))
        elif event.get("message"):
            self.status.setText(str(event["message"]))
            self.status.setToolTip("")

    def _progress(self, event: dict) -> None:
        total = int(event.get("total_steps") or 0)
        step = int(event.get("step") or 0)
        if total:
            self.progress.setMaximum(total)
            self.progress.setValue(min(step, total))
        self.progress.setFormat(f"%p% · epoch {event.get('epoch', '?')} · "
                                f"ETA {format_eta(event.get('eta_s'))}")
        if event.get("loss") is not None:
            self.loss_chart.add_point("loss", step, float(event["loss"]))

    def _metrics(self, event: dict) -> None:
        epoch = event.get("epoch", 0)
        for name, value in (event.get("metrics") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool) \
                    and not name.startswith(("per_", "confusion")) and name not in ("epoch",):
                self.metric_chart.add_point(name, epoch, float(value))  # titled by the chart

    def _ended(self, event: dict) -> None:
        watcher = self.watcher
        self.watcher = None
        if watcher is not None:
            watcher.wait(5000)
        self.last_event = event
        self.train_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        kind = event.get("event")
        if kind == "finished":
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat("done")
            main = self.task.main_metric
            value = (event.get("metrics") or {}).get(main)
            shown = (f" — {metric_title(main, self.task)} {value:.4f}"
                     if isinstance(value, int | float) else "")
            self.status.setText(f"Run {event.get('run_id')} finished{shown}. "
                                "See the Runs tab to compare and export it.")
            self.runFinished.emit(event)
        elif kind == "cancelled":
            self.progress.setFormat("stopped")
            self.status.setText("Training stopped; the run is recorded as cancelled.")
        elif event.get("busy"):  # another program trains this project: nothing was started
            self.progress.setFormat("not started")
            self.status.setText(f"Training not started: {event.get('error')}")
        else:
            log_path = event.get("log")
            where = f"\nDetails: {log_path}" if log_path else ""
            self.progress.setFormat("failed")
            self.status.setText(f"Training failed: {event.get('error')}{where}")
        self.runEnded.emit(event)
