"""The "label" editor: classification and sentence pairs, one key per label."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from annotune.core.tasks import TaskSettings
from annotune.desktop import style
from annotune.desktop.editors.base import MAX_LABEL_KEYS, Editor, big_text_label, field_title

SWATCH = 14  # side of the colour square on a label button, in pixels


def swatch(colour: QColor, border: QColor, size: int = SWATCH) -> QIcon:
    """Return a small square of a label's colour, outlined so a pale one still shows."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(border)
    painter.setBrush(colour)
    painter.drawRoundedRect(0.5, 0.5, size - 1, size - 1, 3, 3)
    painter.end()
    return QIcon(pixmap)


class LabelEditor(Editor):
    """Show the example's text fields and one button per label (keys 1..9).

    Single-label: a label key saves at once. Multi-label: label keys toggle, Enter accepts.
    Enter also accepts the model's suggestion (or the saved annotation) as it stands.
    """

    def __init__(self, task: Any, settings: TaskSettings, parent: QWidget | None = None):
        super().__init__(task, settings, parent)
        self.multi = bool(settings.bound_to(task.options).option("multi_label", False))
        self.chosen: set[str] = set()
        self.suggested: dict[str, Any] | None = None
        self.saved: dict[str, Any] | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        layout = QVBoxLayout(self)
        self.field_views: dict[str, QLabel] = {}
        texts = QWidget()
        texts_layout = QVBoxLayout(texts)
        texts_layout.setContentsMargins(4, 4, 4, 4)
        for name in task.fields:
            if len(task.fields) > 1:
                heading = QLabel(field_title(task, name))
                font = heading.font()
                font.setBold(True)
                heading.setFont(font)
                heading.setForegroundRole(heading.foregroundRole())
                texts_layout.addWidget(heading)
            view = big_text_label()
            view.setObjectName(f"field_{name}")
            view.setFrameShape(QFrame.Shape.StyledPanel)
            view.setMargin(10)
            self.field_views[name] = view
            texts_layout.addWidget(view)
        texts_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(texts)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        layout.addWidget(scroll, 1)

        self.suggestion_label = QLabel()
        self.suggestion_label.setObjectName("suggestion")
        layout.addWidget(self.suggestion_label)

        grid = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        for index, label in enumerate(self.labels()):
            key = str(index + 1) if index < MAX_LABEL_KEYS else ""
            button = QPushButton(f"{key}  {label}" if key else label)
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setMinimumHeight(40)
            font = button.font()
            font.setPointSizeF(font.pointSizeF() * 1.15)
            button.setFont(font)
            verb = "Toggle" if self.multi else "Label as"
            button.setToolTip(f"{verb} '{label}'" + (f" ({key})" if key else ""))
            button.setIconSize(QSize(SWATCH, SWATCH))
            button.clicked.connect(lambda _=False, lab=label: self.press(lab))
            grid.addWidget(button, index // 4, index % 4)
            self.buttons[label] = button
            if key:
                self.add_shortcut(key, lambda lab=label: self.press(lab))
        layout.addLayout(grid)
        self._colour_buttons()
        self.add_shortcut(Qt.Key.Key_Return, self.accept)
        self.add_shortcut(Qt.Key.Key_Enter, self.accept)

    def _colour_buttons(self) -> None:
        """Give each label button its label's one colour (as Try it's bars and NER spans)."""
        border = QColor(style.current().border)
        for index, button in enumerate(self.buttons.values()):
            button.setIcon(swatch(style.label_colour(index), border))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        # the scheme changed (light ↔ dark): the label colours follow it
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._colour_buttons()
        super().changeEvent(event)

    # -- display ---------------------------------------------------------------------------
    def show_example(self, example: Any, annotation: Mapping[str, Any] | None,
                     suggestion: Mapping[str, Any] | None) -> None:
        self.example = example
        for name, view in self.field_views.items():
            view.setText(str(example.fields.get(name, "")))
        self.saved = dict(annotation) if annotation else None
        self.suggested = dict(suggestion) if suggestion else None
        self.chosen = set(_labels_of(self.saved) or _labels_of(self.suggested))
        if self.suggested:
            names = ", ".join(_labels_of(self.suggested)) or "(none)"
            score = self.suggested.get("score")
            shown = f"{names} ({float(score):.2f})" if score is not None else names
            self.suggestion_label.setText(f"Model suggests: <b>{shown}</b> — Enter accepts")
        else:
            self.suggestion_label.setText("")
        self._refresh()

    def _refresh(self) -> None:
        for label, button in self.buttons.items():
            button.setChecked(label in self.chosen)

    def key_help(self) -> list[tuple[str, str]]:
        last = min(len(self.labels()), MAX_LABEL_KEYS)
        keys = f"1–{last}" if last > 1 else "1"
        if self.multi:
            return [(keys, "toggle label"), ("Enter", "accept")]
        return [(keys, "label & next"), ("Enter", "accept suggestion")]

    # -- decisions -------------------------------------------------------------------------
    def press(self, label: str) -> None:
        """Toggle a label (multi-label) or decide it (single-label)."""
        if self.example is None:
            return
        if self.multi:
            self.chosen ^= {label}
            self._refresh()
            return
        self.chosen = {label}
        self._refresh()
        self.decided.emit({"label": label})

    def accept(self) -> None:
        """Accept the labels as they stand (toggled, suggested or saved)."""
        if self.example is None:
            return
        if self.multi:
            ordered = [label for label in self.labels() if label in self.chosen]
            self.decided.emit({"labels": ordered})
        elif self.chosen:
            self.decided.emit({"label": next(iter(self.chosen))})
        else:
            self.message.emit("Press a label key first (no suggestion to accept)")


def _labels_of(payload: Mapping[str, Any] | None) -> list[str]:
    if not payload:
        return []
    if payload.get("labels") is not None:
        return list(payload["labels"])
    if payload.get("label") is not None:
        return [payload["label"]]
    return []
