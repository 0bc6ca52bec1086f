"""The editor contract: show one example, turn key presses into decisions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QWidget

from annotune.core.tasks import TaskSettings

MAX_LABEL_KEYS = 9


def field_title(task: Any, name: str) -> str:
    """Return the heading shown above a field (a task may supply ``field_titles``)."""
    titles = getattr(task, "field_titles", None) or {}
    if name in titles:
        return str(titles[name])
    return name.replace("_", " ").capitalize()


class Editor(QWidget):
    """Base class of editors: a widget that edits the annotation of one example at a time.

    Subclasses implement ``show_example`` and emit ``decided`` with a complete annotation (the
    task's own JSON form) when the person accepts it; the labeling view saves it and moves on.
    """

    decided = Signal(object)  # the annotation dict to save as accepted
    message = Signal(str)  # a short note for the status bar (refusals, hints)

    def __init__(self, task: Any, settings: TaskSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.task = task
        self.settings = settings
        self.example: Any = None

    def show_example(self, example: Any, annotation: Mapping[str, Any] | None,
                     suggestion: Mapping[str, Any] | None) -> None:
        """Display an example with its saved annotation and the model's suggestion, if any."""
        raise NotImplementedError

    def key_help(self) -> list[tuple[str, str]]:
        """Return (key, action) pairs shown under the editor."""
        return []

    def pending_annotation(self) -> dict[str, Any] | None:
        """Return edits made to the shown example but not yet accepted (None when there are none).

        Editors whose decisions take several steps (marking entities) report them, so that
        closing the window can offer to save them instead of losing them.
        """
        return None

    def focus_editor(self) -> None:
        """Give keyboard focus to the part of the editor that receives the keys."""
        self.setFocus()

    # -- helpers ---------------------------------------------------------------------------
    def add_shortcut(self, key: str | QKeySequence | Qt.Key, slot: Any) -> QShortcut:
        """Bind a key to a slot while focus is anywhere inside this editor."""
        sequence = key if isinstance(key, QKeySequence) else QKeySequence(key)
        shortcut = QShortcut(sequence, self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(slot)
        return shortcut

    def labels(self) -> tuple[str, ...]:
        return tuple(self.settings.labels)


def big_text_label(size_factor: float = 1.5) -> QLabel:
    """Return a word-wrapping, selectable label with a larger font, for example text."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * size_factor)
    label.setFont(font)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label
