"""Start the label check from the window, show its progress, and open its suspects.

The check runs in a child process (core/label_check_job.py) with the training environment's
Python, like training; its events are read on a QThread and arrive here as signals. While
it runs, the menu action stops it instead. When it finishes, the Examples tab opens on
"Suspect labels". Before it starts, a small dialog asks for the number of models (folds) and
offers the fast check (``--freeze-encoder``: the frozen encoder runs once and only a head is
fitted per fold) where the task supports it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from annotune.core import training_env
from annotune.core.errors import AnnotuneError
from annotune.core.label_check import CHECK_EPOCHS, DEFAULT_FOLDS, frozen_check_supports
from annotune.core.training.config import TrainConfig
from annotune.desktop import style
from annotune.desktop.job_events import ChildWatcher

log = logging.getLogger("annotune.desktop")


class LabelCheckWatcher(ChildWatcher):
    """Follow a LabelCheckProcess on a worker thread."""

    what = "label check"

    def __init__(self, project_path: Path, config: TrainConfig, folds: int,
                 python: str | None = None, env: dict[str, str] | None = None):
        self.project_path = Path(project_path)
        self.config = config
        self.folds = folds
        super().__init__(python, env)

    def launch(self) -> None:
        from annotune.core.label_check_job import LabelCheckProcess

        self.process = LabelCheckProcess(python=self.python)
        self.process.start(self.project_path, self.config, env=self.env, folds=self.folds)


class CheckLabelsDialog(QDialog):
    """Ask how to check: how many models (folds), and fine-tuned or fast (frozen encoder)."""

    def __init__(self, task: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Check labels")
        self.setObjectName("check_labels_dialog")
        layout = style.padded(QVBoxLayout(self))
        layout.addWidget(style.explanation(
            "Each accepted annotation is checked by a model that never saw it; more models "
            "take longer and judge a little better."))
        form = QFormLayout()
        self.folds = QSpinBox()
        self.folds.setRange(2, 20)
        self.folds.setValue(DEFAULT_FOLDS)
        self.folds.setToolTip("How many models (folds) to train")
        form.addRow("&Models (folds):", self.folds)
        layout.addLayout(form)
        self.fast = QCheckBox("&Fast check: train only a small head on the base model "
                              "(minutes on a CPU, less precise)")
        supported = frozen_check_supports(task)
        self.fast.setEnabled(supported)
        self.fast.setToolTip(
            "The base model reads every example once and each fold fits only a head: "
            "far cheaper than fine-tuning a model per fold, and it finds fewer of the wrong "
            "labels (docs/label-errors.md)" if supported else
            f"The fast check cannot score {task.title}: each fold is fine-tuned")
        layout.addWidget(self.fast)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("&Check")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def choice(self) -> tuple[int, bool]:
        """Return (folds, whether to run the fast frozen-encoder check)."""
        return self.folds.value(), self.fast.isEnabled() and self.fast.isChecked()


class LabelCheckRunner(QObject):
    """One check at a time for a window: start (asking for the folds), progress, stop."""

    message = Signal(str)  # progress and outcome, for the status bar
    running = Signal(bool)
    finished = Signal(int)  # the check id

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.window = parent
        self.watcher: LabelCheckWatcher | None = None

    def toggle(self, project: Any) -> None:
        """Start a check of the project, or stop the one running."""
        if self.watcher is not None:
            self.message.emit("Stopping the label check…")
            self.watcher.stop()
            return
        dialog = CheckLabelsDialog(project.task, self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        folds, fast = dialog.choice()
        from annotune.desktop.training_env import with_interpreter

        with_interpreter(self.window, lambda interpreter: self.start(
            project, folds, interpreter.python, fast=fast))

    def start(self, project: Any, folds: int, python: str | None = None,
              fast: bool = False) -> None:
        """Start the check in a child process with ``python`` (None: this interpreter).

        ``fast``: the frozen-encoder check (one pass of the base model, a head per fold).
        """
        if self.watcher is not None:
            return
        config = TrainConfig(epochs=CHECK_EPOCHS, base_model=project.base_model,
                             freeze_encoder=fast)
        watcher = LabelCheckWatcher(Path(project.path), config, folds, python=python,
                                    env=training_env.child_overrides())
        watcher.event.connect(self._event)
        watcher.ended.connect(self._ended)
        self.watcher = watcher
        self.running.emit(True)
        self.message.emit("Starting the label check…")
        watcher.start()

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "started":
            self.message.emit(f"Checking {event.get('examples')} labels with "
                              f"{event.get('folds')} models on {event.get('device_label')}…")
        elif kind == "progress" and event.get("fold"):
            self.message.emit(f"Checking labels: model {event['fold']} of {event['folds']}, "
                              f"step {event.get('step')} of {event.get('total_steps')}")

    def _ended(self, event: dict[str, Any]) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.wait(2000)
        self.running.emit(False)
        kind = event.get("event")
        if kind == "finished":
            self.message.emit(f"Label check done: {event.get('suspects', 0)} suspect labels "
                              f"of {event.get('issues', 0)}")
            self.finished.emit(int(event["check_id"]))
        elif kind == "cancelled":
            self.message.emit("Label check stopped; nothing was stored")
        else:
            from annotune.desktop.crash import show_error

            show_error(self.window, AnnotuneError(f"the label check failed: "
                                                  f"{event.get('error')}"))


def runner_for(window: Any) -> LabelCheckRunner:
    """Return the window's runner, wired to its status bar, menu action and Examples tab."""
    runner = getattr(window, "label_check_runner", None)
    if runner is not None:
        return runner
    runner = LabelCheckRunner(window)
    runner.message.connect(lambda text: window.statusBar().showMessage(text, 15000))
    runner.running.connect(lambda on: window.check_labels_action.setText(
        "Stop the label &check" if on else "&Check labels…"))

    def show_suspects(_check_id: int) -> None:
        browser = window.views.get("examples")
        if browser is not None:
            browser.show_suspects()
            window.tabs.setCurrentWidget(browser)

    runner.finished.connect(show_suspects)
    window.label_check_runner = runner
    return runner
