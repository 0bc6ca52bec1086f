"""The start screen: new project, open project, recent projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from annotune.core.errors import AnnotuneError
from annotune.core.tasks import TaskSettings
from annotune.desktop.recent import recent_projects

BUNDLED_MODEL_TEXT = "bundled all-MiniLM-L6-v2"
PROJECT_SUFFIX = ".annotune"


class StartScreen(QWidget):
    """First thing a person sees: make or open a project."""

    newRequested = Signal()
    openRequested = Signal()
    openPath = Signal(Path)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        box = QVBoxLayout()
        title = QLabel("annotune")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 2.4)
        font.setBold(True)
        title.setFont(font)
        box.addWidget(title)
        box.addWidget(QLabel("Label text, train a model, export it — all on this computer."))
        buttons = QHBoxLayout()
        self.new_button = QPushButton("New project…")
        self.new_button.setToolTip("Create a project (Ctrl+N)")
        self.new_button.clicked.connect(self.newRequested)
        self.open_button = QPushButton("Open project…")
        self.open_button.setToolTip("Open a .annotune project file (Ctrl+O)")
        self.open_button.clicked.connect(self.openRequested)
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        box.addLayout(buttons)
        box.addWidget(QLabel("Recent projects"))
        self.recent = QListWidget()
        self.recent.setObjectName("recent_projects")
        self.recent.setToolTip("Double-click (or Enter) to open")
        self.recent.itemActivated.connect(
            lambda item: self.openPath.emit(Path(item.data(Qt.ItemDataRole.UserRole))))
        box.addWidget(self.recent)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addLayout(box, 3)
        row.addStretch(1)
        outer.addLayout(row, 4)
        outer.addStretch(1)
        self.refresh()

    def refresh(self) -> None:
        """Reload the recent projects list."""
        self.recent.clear()
        for path in recent_projects():
            item = QListWidgetItem(f"{path.name}    —    {path.parent}")
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(str(path))
            self.recent.addItem(item)
        if not self.recent.count():
            item = QListWidgetItem("No recent projects yet")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)


class NewProjectDialog(QDialog):
    """Ask for the task, labels, base model and file of a new project."""

    def __init__(self, registry: Any, parent: QWidget | None = None,
                 folder: Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.registry = registry
        form = QFormLayout(self)
        self.task = QComboBox()
        for task in sorted(registry.tasks.values(), key=lambda t: t.title):
            self.task.addItem(task.title, task.name)
        self.task.currentIndexChanged.connect(self._task_changed)
        form.addRow("Task", self.task)
        self.labels = QLineEdit()
        self.labels.setPlaceholderText("comma separated, e.g. negative, positive")
        form.addRow("Labels", self.labels)
        self.multi_label = QCheckBox("Several labels per example")
        form.addRow("", self.multi_label)
        self.unanswerable = QCheckBox("Some questions have no answer")
        form.addRow("", self.unanswerable)
        model_row = QHBoxLayout()
        self.base_model = QLineEdit()
        self.base_model.setPlaceholderText(BUNDLED_MODEL_TEXT + " (default)")
        self.base_model.setToolTip("Leave empty for the bundled model, or give a folder or "
                                   "a Hugging Face hub id already in the local cache")
        browse_model = QPushButton("Folder…")
        browse_model.clicked.connect(self._browse_model)
        model_row.addWidget(self.base_model, 1)
        model_row.addWidget(browse_model)
        form.addRow("Base model", model_row)
        path_row = QHBoxLayout()
        self.path = QLineEdit(str((folder or Path.home()) / f"untitled{PROJECT_SUFFIX}"))
        browse = QPushButton("Save as…")
        browse.clicked.connect(self._browse_path)
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        form.addRow("Project file", path_row)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setObjectName("error")
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._task_changed()

    def _task(self) -> Any:
        return self.registry.task(self.task.currentData())

    def _task_changed(self) -> None:
        task = self._task()
        self.labels.setEnabled(bool(task.needs_labels))
        self.multi_label.setVisible(task.supports_multi_label)
        self.unanswerable.setVisible(task.annotation_kind == "answers")

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Base model folder")
        if folder:
            self.base_model.setText(folder)

    def _browse_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New project", self.path.text(),
                                              f"annotune projects (*{PROJECT_SUFFIX})")
        if path:
            if not path.endswith(PROJECT_SUFFIX):
                path += PROJECT_SUFFIX
            self.path.setText(path)

    def values(self) -> tuple[Path, str, TaskSettings, str | None]:
        """Return (path, task name, settings, base model or None for the bundled one)."""
        task = self._task()
        labels = tuple(x.strip() for x in self.labels.text().split(",") if x.strip())
        settings = task.default_settings().with_(
            labels=labels if task.needs_labels else (),
            multi_label=self.multi_label.isChecked() and task.supports_multi_label,
            allow_unanswerable=self.unanswerable.isChecked() and task.annotation_kind == "answers")
        base = self.base_model.text().strip() or None
        return Path(self.path.text().strip()), task.name, settings, base

    def _check(self) -> None:
        path, _name, settings, _base = self.values()
        try:
            self._task().check_settings(settings)
            if len(set(settings.labels)) != len(settings.labels):
                raise AnnotuneError("a label appears twice", hint="give each label once")
            if path.exists():
                raise AnnotuneError("a file with this name exists", where=str(path),
                                    hint="choose another name, or open it instead")
            if not path.parent.is_dir():
                raise AnnotuneError("the folder does not exist", where=str(path.parent))
        except AnnotuneError as error:
            self.error.setText(str(error))
            return
        self.accept()
