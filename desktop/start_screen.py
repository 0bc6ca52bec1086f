"""The start screen: new project, open project, recent projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
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
from annotune.desktop import style
from annotune.desktop.recent import recent_projects
from annotune.desktop.task_option_fields import OptionField

BUNDLED_MODEL_TEXT = "bundled all-MiniLM-L6-v2"
PROJECT_SUFFIX = ".annotune"
DEFAULT_TASK = "text-classification"  # the task most first projects are
TAKEN_MNEMONICS = "tmf"  # Task, Base model, Project file
EMPTY_RECENT = ("No recent projects yet.<br>Create one with <b>New project…</b> (Ctrl+N), "
                "or open a <i>.annotune</i> file with <b>Open project…</b> (Ctrl+O).")
MOST_CHARS = 64  # a field grows to show this many characters before it scrolls its text


def _with_mnemonic(title: str) -> str:
    """Put the Alt+letter of a task's label title on its first letter no other field uses."""
    for index, char in enumerate(title):
        if char.isalpha() and char.lower() not in TAKEN_MNEMONICS:
            return f"{title[:index]}&{title[index:]}"
    return title


def _buddy(text: str, widget: QWidget) -> QLabel:
    """Return a form label whose Alt+letter moves the focus to ``widget``."""
    label = QLabel(text)
    label.setBuddy(widget)
    return label


def fit_to_text(edit: QLineEdit, text: str) -> None:
    """Make a line edit wide enough to show ``text`` whole (up to MOST_CHARS characters).

    Measured with the widget's font, so the width follows the text size at any scale.
    """
    metrics = edit.fontMetrics()
    wanted = min(metrics.horizontalAdvance(text), metrics.averageCharWidth() * MOST_CHARS)
    margins = edit.textMargins()
    # the frame and the text margins of the style, plus room for the cursor
    edit.setMinimumWidth(wanted + margins.left() + margins.right()
                         + 4 * metrics.averageCharWidth())


class StartScreen(QWidget):
    """First thing a person sees: make or open a project."""

    newRequested = Signal()
    openRequested = Signal()
    openPath = Signal(Path)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(style.MARGIN, style.MARGIN, style.MARGIN, style.MARGIN)
        outer.addStretch(1)
        box = QVBoxLayout()
        box.setSpacing(style.SPACING)
        heading = QHBoxLayout()
        icon = QLabel()
        icon.setObjectName("app_icon")
        size = int(self.fontMetrics().height() * 3.2)
        icon.setPixmap(style.app_icon().pixmap(size, size))
        heading.addWidget(icon)
        title = style.title(QLabel("annotune"))
        heading.addWidget(title)
        heading.addStretch(1)
        box.addLayout(heading)
        box.addWidget(style.muted(QLabel(
            "Label text, train a model, export it — all on this computer.")))
        box.addSpacing(style.SPACING)
        buttons = QHBoxLayout()
        self.new_button = style.primary(QPushButton("New project…"))
        self.new_button.setToolTip("Create a project (Ctrl+N)")
        self.new_button.clicked.connect(self.newRequested)
        self.open_button = QPushButton("Open project…")
        self.open_button.setToolTip("Open a .annotune project file (Ctrl+O)")
        self.open_button.clicked.connect(self.openRequested)
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        box.addLayout(buttons)
        box.addSpacing(style.SECTION)
        box.addWidget(style.heading(QLabel("Recent projects")))
        self.recent = QListWidget()
        self.recent.setObjectName("recent_projects")
        self.recent.setToolTip("Double-click (or Enter) to open")
        self.recent.setSpacing(style.UNIT // 2)
        self.recent.itemActivated.connect(
            lambda item: self.openPath.emit(Path(item.data(Qt.ItemDataRole.UserRole))))
        box.addWidget(self.recent)
        self.empty = style.empty_state(QLabel(EMPTY_RECENT))
        self.empty.setObjectName("recent_empty")
        box.addWidget(self.empty)
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
        has_recent = self.recent.count() > 0
        self.recent.setVisible(has_recent)
        self.empty.setVisible(not has_recent)
        if has_recent:
            self.recent.setCurrentRow(0)


class NewProjectDialog(QDialog):
    """Ask for the task, labels, base model and file of a new project."""

    def __init__(self, registry: Any, parent: QWidget | None = None,
                 folder: Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.registry = registry
        form = QFormLayout(self)
        form.setContentsMargins(style.MARGIN, style.MARGIN, style.MARGIN, style.MARGIN)
        form.setHorizontalSpacing(style.SPACING * 2)
        form.setVerticalSpacing(style.SPACING)
        # fields take the dialog's width; labels keep theirs (no field is squeezed to clip)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self.task = QComboBox()
        for task in sorted(registry.tasks.values(), key=lambda t: t.title):
            self.task.addItem(task.title, task.name)
        self.task.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        default = self.task.findData(DEFAULT_TASK)
        self.task.setCurrentIndex(max(default, 0))
        self.task.currentIndexChanged.connect(self._task_changed)
        form.addRow("&Task", self.task)
        self.labels = QLineEdit()
        self.labels_title = QLabel("&Labels")
        self.labels_title.setBuddy(self.labels)
        form.addRow(self.labels_title, self.labels)
        # the options each task declares for the form (advanced ones stay on the command line)
        self.option_fields: dict[str, list[OptionField]] = {}
        for task in registry.tasks.values():
            fields = [OptionField(option) for option in task.options if not option.advanced]
            for option_field in fields:
                form.addRow(option_field.title, option_field.widget)
            self.option_fields[task.name] = fields
        self.form = form
        model_row = QHBoxLayout()
        self.base_model = QLineEdit()
        self.base_model.setPlaceholderText(BUNDLED_MODEL_TEXT + " (default)")
        self.base_model.setToolTip("Leave empty for the bundled model, or give a folder or "
                                   "a Hugging Face hub id already in the local cache")
        browse_model = QPushButton("Folder…")
        browse_model.setAutoDefault(False)
        browse_model.clicked.connect(self._browse_model)
        model_row.addWidget(self.base_model, 1)
        model_row.addWidget(browse_model)
        form.addRow(_buddy("Base &model", self.base_model), model_row)
        path_row = QHBoxLayout()
        self.folder = folder or Path.home()  # where a bare name typed below goes
        self.path = QLineEdit(str(self.folder / f"untitled{PROJECT_SUFFIX}"))
        self.path.setToolTip("Where the project file is created")
        browse = QPushButton("Save as…")
        browse.setAutoDefault(False)
        browse.clicked.connect(self._browse_path)
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        form.addRow(_buddy("Project &file", self.path), path_row)
        self.error = style.error_text(QLabel())
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
        fit_to_text(self.base_model, self.base_model.placeholderText())
        fit_to_text(self.path, self.path.text())

    def option_field(self, name: str) -> OptionField | None:
        """Return the field of the chosen task's option ``name`` (None: the task lacks it)."""
        fields = self.option_fields.get(self.task.currentData(), [])
        return next((item for item in fields if item.option.name == name), None)

    def _task(self) -> Any:
        return self.registry.task(self.task.currentData())

    def _task_changed(self) -> None:
        task = self._task()
        self.labels_title.setText(_with_mnemonic(task.labels_title))
        self.labels.setPlaceholderText(f"comma separated, e.g. {task.labels_example}")
        fit_to_text(self.labels, self.labels.placeholderText())
        self.labels.setVisible(bool(task.needs_labels))
        self.labels_title.setVisible(bool(task.needs_labels))
        for name, fields in self.option_fields.items():
            for option_field in fields:
                self.form.setRowVisible(option_field.widget, name == task.name)
        self.adjustSize()

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
        # only what differs from the declared default is stored: the default stays the task's
        chosen = {option_field.option.name: option_field.value()
                  for option_field in self.option_fields.get(task.name, [])}
        settings = task.default_settings().with_(
            labels=labels if task.needs_labels else (),
            **{name: value for name, value in chosen.items()
               if value != task.declared_option(name).default})
        base = self.base_model.text().strip() or None
        return self.project_path(), task.name, settings, base

    def project_path(self) -> Path:
        """Return the file the project is created in, as Open project will find it again.

        A bare name goes into the folder the field started in (not wherever the app was
        started from), and the file gets the .annotune ending the Open dialog lists.
        """
        path = Path(self.path.text().strip()).expanduser()
        if not path.is_absolute():
            path = self.folder / path
        if path.suffix != PROJECT_SUFFIX:
            path = path.with_name(path.name + PROJECT_SUFFIX)
        return path

    def _check(self) -> None:
        try:
            path, _name, settings, _base = self.values()
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
            # a wrapped message needs more height than the empty label had: grow to show it all
            self.adjustSize()
            return
        self.accept()
