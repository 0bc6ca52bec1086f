"""The "spans" editor: named entities as character spans over a read-only text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QEvent, QSignalBlocker, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from annotune.core.tasks import TaskSettings
from annotune.desktop import style
from annotune.desktop.editors.base import MAX_LABEL_KEYS, Editor
from annotune.desktop.editors.textspans import SpanText, entity_colour, snap_to_words


class SpansEditor(Editor):
    """Select text (mouse or Shift+arrows), press a type key; Enter accepts the example.

    The selection snaps to word boundaries. Clicking inside an entity selects it, and
    Delete/Backspace removes it. An overlapping span is refused with a status-bar message.
    """

    def __init__(self, task: Any, settings: TaskSettings, parent: QWidget | None = None):
        super().__init__(task, settings, parent)
        self.spans: list[dict[str, Any]] = []
        self.loaded: list[dict[str, Any]] = []  # the spans as shown, to notice unsaved edits
        self.selected: int | None = None
        self.from_suggestion = False

        layout = QVBoxLayout(self)
        self.chips: list[QLabel] = []
        legend = QHBoxLayout()
        legend.addWidget(QLabel("Types:"))
        for index, label in enumerate(self.labels()):
            key = f"{index + 1} " if index < MAX_LABEL_KEYS else ""
            chip = QLabel(f" {key}{label} ")
            chip.setObjectName(f"type_{label}")
            chip.setToolTip(f"Select text and press {key.strip() or 'the type button'}"
                            f" to mark it as {label}")
            legend.addWidget(chip)
            self.chips.append(chip)
        self._colour_chips()
        legend.addStretch(1)
        layout.addLayout(legend)

        self.text_view = SpanText()
        self.text_view.setObjectName("spans_text")
        self.text_view.cursorPositionChanged.connect(self._cursor_moved)
        layout.addWidget(self.text_view, 1)
        self.note = QLabel()
        self.note.setObjectName("suggestion")
        layout.addWidget(self.note)

        for index, label in enumerate(self.labels()[:MAX_LABEL_KEYS]):
            self.add_shortcut(str(index + 1), lambda lab=label: self.apply_label(lab))
        self.add_shortcut(Qt.Key.Key_Return, self.accept)
        self.add_shortcut(Qt.Key.Key_Enter, self.accept)
        self.add_shortcut(Qt.Key.Key_Delete, self.delete_selected)
        self.add_shortcut(Qt.Key.Key_Backspace, self.delete_selected)

    def _colour_chips(self) -> None:
        """Show each entity type in its label's one colour (as the spans painted with it)."""
        text = style.current().text
        for index, chip in enumerate(self.chips):
            chip.setStyleSheet(f"background-color: {entity_colour(index).name()}; "
                               f"color: {text}; border-radius: 3px; padding: 2px 6px;")

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        # the scheme changed (light ↔ dark): the label colours follow it
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._colour_chips()
            if getattr(self, "example", None) is not None:
                self._paint()
        super().changeEvent(event)

    def focus_editor(self) -> None:
        self.text_view.setFocus()

    def key_help(self) -> list[tuple[str, str]]:
        last = min(len(self.labels()), MAX_LABEL_KEYS)
        return [("Shift+←/→", "select"), (f"1–{last}", "mark type"),
                ("Del", "remove entity"), ("Enter", "accept")]

    # -- display ---------------------------------------------------------------------------
    def show_example(self, example: Any, annotation: Mapping[str, Any] | None,
                     suggestion: Mapping[str, Any] | None) -> None:
        self.example = example
        source = annotation if annotation else suggestion
        self.from_suggestion = not annotation and bool(suggestion and suggestion.get("spans"))
        self.spans = [{"start": int(s["start"]), "end": int(s["end"]), "label": s["label"]}
                      for s in (source or {}).get("spans", [])
                      if s.get("label") in self.labels()]
        self.spans.sort(key=lambda s: s["start"])
        self.loaded = [dict(s) for s in self.spans]
        self.selected = None
        # the new text puts the cursor at its start: that is no click on an entity, and must
        # not announce one (least of all one of the example before, over the new text)
        blocker = QSignalBlocker(self.text_view)
        try:
            self.text_view.set_text(str(example.fields.get(self.task.fields[0], "")))
        finally:
            blocker.unblock()
        if self.from_suggestion:
            self.note.setText(f"Model suggests {len(self.spans)} entities — Enter accepts, "
                              "Del removes one")
        else:
            self.note.setText("")
        self._paint()

    def _paint(self) -> None:
        index = {label: i for i, label in enumerate(self.labels())}
        self.text_view.paint_spans(
            (s["start"], s["end"], entity_colour(index.get(s["label"], 0)), i == self.selected)
            for i, s in enumerate(self.spans))

    def _cursor_moved(self) -> None:
        start, end = self.text_view.selection()
        if start != end:
            return
        position = self.text_view.cursor_position()
        hit = next((i for i, s in enumerate(self.spans) if s["start"] <= position < s["end"]),
                   None)
        if hit != self.selected:
            self.selected = hit
            self._paint()
            if hit is not None:
                span = self.spans[hit]
                self.message.emit(f"Entity {span['label']}: "
                                  f"'{self.text_view.text()[span['start']:span['end']]}' — "
                                  "Del removes it")

    # -- edits -----------------------------------------------------------------------------
    def apply_label(self, label: str) -> None:
        """Mark the (word-snapped) selection as an entity of this type."""
        text = self.text_view.text()
        start, end = snap_to_words(text, *self.text_view.selection())
        if start >= end:
            self.message.emit("Select some text first (mouse or Shift+arrows)")
            return
        for span in self.spans:
            if span["start"] < end and start < span["end"]:
                self.message.emit(
                    f"Refused: overlaps {span['label']} "
                    f"'{text[span['start']:span['end']]}' — remove that entity first")
                return
        self.spans.append({"start": start, "end": end, "label": label})
        self.spans.sort(key=lambda s: s["start"])
        self.text_view.clear_selection()
        self.selected = None
        self._paint()
        self.message.emit(f"Marked '{text[start:end]}' as {label}")

    def delete_selected(self) -> None:
        """Remove the entity under the cursor."""
        if self.selected is None:
            self.message.emit("Click on an entity first, then press Delete")
            return
        removed = self.spans.pop(self.selected)
        self.selected = None
        self._paint()
        self.message.emit(f"Removed {removed['label']} entity")

    def pending_annotation(self) -> dict[str, Any] | None:
        if self.example is None or self.spans == self.loaded:
            return None
        return {"spans": [dict(s) for s in self.spans]}

    def accept(self) -> None:
        """Save the example with its entities as they stand."""
        if self.example is None:
            return
        self.decided.emit({"spans": [dict(s) for s in self.spans]})
