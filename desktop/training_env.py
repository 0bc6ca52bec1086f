"""The desktop side of the training environment: find it, or offer to create it ("Enable training").

The app trains and exports through a Python that has torch (core/training_env.py says where it
looks). The choice made here is kept in QSettings; creating one runs pip on a worker thread
and shows its output as it comes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from annotune.core import __version__, training_env
from annotune.core.errors import AnnotuneError
from annotune.core.extras import TORCH_CPU_INDEX
from annotune.desktop.crash import data_dir
from annotune.desktop.worker import run_in_background

SETTING = "training/python"

Interpreter = training_env.Interpreter


def configured_python() -> str | None:
    """Return the Python chosen in the app for training (None: not chosen)."""
    value = QSettings().value(SETTING)
    return str(value) if value else None


def set_configured_python(python: str | None) -> None:
    QSettings().setValue(SETTING, python or "")


def find_interpreter() -> tuple[Interpreter | None, list[str]]:
    """Look for a Python that can train (blocking: probing one takes seconds)."""
    return training_env.find(configured_python(), data_dir())


def with_interpreter(parent: QWidget, use: Callable[[Interpreter], object],
                     purpose: str = "train",
                     cancelled: Callable[[], object] = lambda: None) -> None:
    """Call ``use`` with a Python that can train, offering to enable training when none is.

    Looking is done on a worker thread; ``use`` runs on the GUI thread, ``cancelled`` when
    the person closes the dialog (or looking failed) without a Python to use.
    """
    try:  # known already (probed before, or this installation has torch): start at once
        found_now = training_env.find(configured_python(), data_dir(), cached_only=True)
    except LookupError:
        found_now = None

    def found(result: tuple[Interpreter | None, list[str]]) -> None:
        interpreter, reasons = result
        if interpreter is not None:
            use(interpreter)
            return
        dialog = EnableTrainingDialog(reasons, purpose, parent)
        dialog.enabled.connect(use)
        dialog.rejected.connect(cancelled)
        dialog.open()
        parent.enable_training_dialog = dialog  # kept for tests and to keep it alive

    def failed(error: BaseException) -> None:
        from annotune.desktop.crash import show_error

        show_error(parent, error)
        cancelled()

    if found_now is not None and found_now[0] is not None:
        found(found_now)
    else:
        run_in_background(find_interpreter, found, failed)


class _Lines(QObject):
    line = Signal(str)
    done = Signal(object)  # an Interpreter, or the error that stopped the creation


class EnableTrainingDialog(QDialog):
    """Explain why training needs torch, and create (or choose) the environment that has it."""

    enabled = Signal(object)  # the Interpreter to use

    def __init__(self, reasons: list[str], purpose: str = "train",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("enable_training")
        self.setWindowTitle("Enable training")
        self.setMinimumWidth(620)
        self.interpreter: Interpreter | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        folder = training_env.env_folder(data_dir())
        index = training_env.torch_index()
        build = ("the CPU build of PyTorch (about 1 GB; no NVIDIA GPU was found)"
                 if index == TORCH_CPU_INDEX else
                 "PyTorch with CUDA (a few GB; nvidia-smi found a GPU)" if index is None else
                 f"PyTorch from {index}")
        layout = QVBoxLayout(self)
        text = QLabel(
            f"To {purpose}, annotune needs PyTorch, which this app does not carry. It can "
            f"create a Python environment for it in\n{folder}\nwith {build}, annotune's "
            f"training packages and the default base model — downloaded once, used by every "
            f"project. You can also choose a Python that already has torch and annotune "
            f"{__version__} (or set {training_env.ENV_PYTHON}).")
        text.setWordWrap(True)
        layout.addWidget(text)
        if reasons:
            tried = QLabel("Tried: " + "; ".join(reasons))
            tried.setWordWrap(True)
            tried.setObjectName("tried")
            layout.addWidget(tried)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setObjectName("creation_log")
        self.log.setMaximumBlockCount(2000)
        layout.addWidget(self.log, 1)
        buttons = QHBoxLayout()
        self.choose_button = QPushButton("Use a Python…")
        self.choose_button.clicked.connect(self.choose)
        self.create_button = QPushButton("Create environment")
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self.create)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.choose_button)
        buttons.addStretch(1)
        buttons.addWidget(self.create_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.lines = _Lines()
        self.lines.line.connect(self.log.appendPlainText)
        self.lines.done.connect(self._created)

    # -- choosing an existing Python ------------------------------------------------------
    def choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Python with torch and annotune")
        if path:
            self.use_python(path)

    def use_python(self, python: str) -> None:
        """Check a Python the user named; keep it when it can train."""
        self.log.appendPlainText(f"checking {python} …")
        self._busy(True)
        run_in_background(lambda: training_env.probe(python, "chosen in the app"),
                          self._checked, self._failed)

    def _checked(self, result: Interpreter | str) -> None:
        self._busy(False)
        if isinstance(result, str):
            self.log.appendPlainText(result)
            return
        set_configured_python(result.python)
        self._finish(result)

    # -- creating one ---------------------------------------------------------------------
    def create(self) -> None:
        """Create the environment on a worker thread, streaming pip's output."""
        try:
            steps = training_env.plan(data_dir())
        except AnnotuneError as error:
            self._failed(error)
            return
        self._busy(True)
        self.cancel_button.setEnabled(True)
        self._stop.clear()
        threading.Thread(target=self._run, args=(steps,), name="training-env",
                         daemon=True).start()

    def _run(self, steps: list[tuple[str, list[str]]]) -> None:
        try:
            training_env.run_steps(steps, self.lines.line.emit, self._stop.is_set)
            result = training_env.probe(steps[-1][1][0], "created")
            outcome: object = (AnnotuneError(result) if isinstance(result, str) else result)
        except Exception as error:  # shown in the dialog
            outcome = error
        self.lines.done.emit(outcome)

    def _created(self, outcome: object) -> None:
        self._busy(False)
        if isinstance(outcome, Interpreter):
            self.log.appendPlainText(f"ready: {outcome.describe()}")
            self._finish(outcome)
        else:
            self._failed(outcome)  # type: ignore[arg-type]

    # -- either way -----------------------------------------------------------------------
    def _finish(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self.accept()
        self.enabled.emit(interpreter)

    def _failed(self, error: BaseException) -> None:
        self.error = error
        self._busy(False)
        self.log.appendPlainText(f"⚠ {error}")

    def _busy(self, busy: bool) -> None:
        self.create_button.setEnabled(not busy)
        self.choose_button.setEnabled(not busy)

    def reject(self) -> None:
        self._stop.set()  # a running pip is stopped; what it installed stays for a next try
        super().reject()
