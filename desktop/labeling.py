"""The labeling view: one editor, the example queue, saving, navigation, undo and redo."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from annotune.core.errors import AnnotuneError
from annotune.desktop.editors.base import Editor


def _payload(stored: Any) -> dict[str, Any] | None:
    """Return the JSON payload of a stored annotation or prediction record (or a plain dict)."""
    if stored is None:
        return None
    if isinstance(stored, dict):
        for key in ("payload", "prediction", "annotation"):
            if isinstance(stored.get(key), dict):
                return stored[key]
        return stored
    for key in ("payload", "prediction", "annotation"):
        value = getattr(stored, key, None)
        if isinstance(value, dict):
            return value
    return None


def _status(stored: Any) -> str | None:
    if stored is None:
        return None
    if isinstance(stored, dict):
        return stored.get("status")
    return getattr(stored, "status", None)


class LabelingView(QWidget):
    """Show examples one after another in the task's editor and save each decision at once.

    Each save and skip is its own committed transaction in the store, so closing the window
    loses nothing that was decided. The queue is the store's ``next_example`` (unlabeled
    examples, by id or most uncertain first); Left/PgUp goes back through the examples shown in
    this session, Right/PgDn forward again and then on to the next unlabeled one.
    """

    countsChanged = Signal()  # counts may have changed in ways only a recount tells
    statusChanged = Signal(str, str)  # one example went from status A to B ("" = unlabeled)
    message = Signal(str)
    exampleShown = Signal(int)

    def __init__(self, project: Any, task: Any, editor: Editor, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.task = task
        self.editor = editor
        self.current: Any = None
        self.history: list[int] = []  # example ids shown, in order
        self.position = -1  # index of the current example in history
        self.order = "id"

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.header = QLabel()
        self.header.setObjectName("example_header")
        top.addWidget(self.header, 1)
        self.uncertain = QCheckBox("Most uncertain first")
        self.uncertain.setToolTip("Show the examples the model is least sure about first "
                                  "(needs pre-annotation)")
        self.uncertain.toggled.connect(self._order_toggled)
        top.addWidget(self.uncertain)
        layout.addLayout(top)

        self.stack = QStackedLayout()
        self.stack.addWidget(editor)
        self.done_label = QLabel("Every example is labeled or skipped. Import more text, or "
                                 "train a model (Model ▸ Train…).")
        self.done_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.done_label.setWordWrap(True)
        self.stack.addWidget(self.done_label)
        layout.addLayout(self.stack, 1)

        bottom = QHBoxLayout()
        self.prev_button = self._button("← Previous", "Previous example (Left / PgUp)",
                                        self.previous)
        self.skip_button = self._button("Skip (S)", "Skip this example (S)", self.skip)
        self.next_button = self._button("Next →", "Next example (Right / PgDn)", self.next)
        bottom.addWidget(self.prev_button)
        self.keys_label = QLabel()
        self.keys_label.setObjectName("keys_help")
        self.keys_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        bottom.addWidget(self.keys_label, 1)
        bottom.addWidget(self.skip_button)
        bottom.addWidget(self.next_button)
        layout.addLayout(bottom)

        question = getattr(editor, "question", None)
        if question is not None and not hasattr(project, "update_fields"):
            # the store has no way to change an example's text yet: don't offer an edit
            # that would be lost
            question.setReadOnly(True)
            question.setToolTip("The question as imported")
        editor.decided.connect(self.save)
        editor.message.connect(self.message)
        self._shortcut("S", self.skip)
        self._shortcut(Qt.Key.Key_PageUp, self.previous)
        self._shortcut(Qt.Key.Key_PageDown, self.next)
        if editor.__class__.__name__ == "LabelEditor":
            # arrows move the text cursor in span editors, so only here do they navigate
            self._shortcut(Qt.Key.Key_Left, self.previous)
            self._shortcut(Qt.Key.Key_Right, self.next)
        keys = editor.key_help() + [("S", "skip"), ("PgUp/PgDn", "prev/next"),
                                    ("Ctrl+Z", "undo")]
        self.keys_label.setText("  ·  ".join(f"<b>{k}</b> {what}" for k, what in keys))

    def _button(self, text: str, tip: str, slot: Any) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.clicked.connect(slot)
        return button

    def _shortcut(self, key: Any, slot: Any) -> None:
        shortcut = QShortcut(QKeySequence(key), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(slot)

    # -- showing ---------------------------------------------------------------------------
    def start(self) -> None:
        """Show the first unlabeled example (in the chosen order)."""
        self._advance()

    def show_example_id(self, example_id: int, remember: bool = True) -> None:
        """Show one example (from the browser, undo or history) with its saved annotation."""
        example = self.project.example(example_id)
        if remember:
            del self.history[self.position + 1:]
            self.history.append(example_id)
            self.position = len(self.history) - 1
        self._display(example)

    def _display(self, example: Any) -> None:
        self.current = example
        if example is None:
            self.stack.setCurrentIndex(1)
            self.header.setText("")
            return
        stored = self.project.annotation(example.id)
        annotation, status = _payload(stored), _status(stored)
        suggestion = None
        if status != "accepted":
            suggestion = _payload(self.project.prediction(example.id))
        self.stack.setCurrentIndex(0)
        self.editor.show_example(example, annotation if status == "accepted" else None,
                                 suggestion)
        state = {"accepted": "labeled", "skipped": "skipped"}.get(status or "", "unlabeled")
        where = f" · {example.source}" if getattr(example, "source", None) else ""
        line = f":{example.line}" if getattr(example, "line", None) else ""
        self.header.setText(f"Example #{example.id} · {state}{where}{line}")
        self.editor.focus_editor()
        self.exampleShown.emit(example.id)

    def refresh_current(self) -> None:
        """Show the current example again (e.g. after new suggestions were stored).

        Entities being marked stay on screen: new suggestions must not wipe them.
        """
        if self.current is None:
            self._advance()
        elif self.editor.pending_annotation() is None:
            self._display(self.project.example(self.current.id))

    def open_example(self, example_id: int) -> None:
        """Show an example picked elsewhere (the browser); marks on the current one are kept."""
        if self.current is None or self.current.id != example_id:
            self._keep_pending()
        self.show_example_id(example_id)

    def _keep_pending(self) -> None:
        """Save entities marked but not yet accepted before their example leaves the screen.

        Every decision is saved the moment it is made; an entity marked is one, even when
        the person moves on with PgUp/PgDn instead of accepting with Enter.
        """
        if self.current is None:
            return
        pending = self.editor.pending_annotation()
        if pending is not None and self._store(pending):
            self.message.emit(f"Saved the entities marked on example #{self.current.id}")

    def _advance(self) -> None:
        after = self.current.id if self.current is not None else None
        example = self.project.next_example(after_id=after, status="unlabeled",
                                            order=self.order)
        if example is None and after is not None:
            example = self.project.next_example(after_id=None, status="unlabeled",
                                                order=self.order)
        if example is None:
            self._display(None)
            return
        del self.history[self.position + 1:]
        self.history.append(example.id)
        self.position = len(self.history) - 1
        self._display(example)

    def _order_toggled(self, checked: bool) -> None:
        self._keep_pending()
        self.order = "uncertainty" if checked else "id"
        self.current = None
        self._advance()

    # -- decisions -------------------------------------------------------------------------
    def save(self, annotation: dict[str, Any]) -> None:
        """Save the editor's decision (its own committed transaction) and show the next one."""
        if self.current is None:
            return
        try:
            edited = getattr(self.editor, "edited_fields", lambda: None)()
            if edited and hasattr(self.project, "update_fields"):
                self.project.update_fields(self.current.id, edited)
                self.current = self.project.example(self.current.id)
        except AnnotuneError as error:
            self.message.emit(f"Not saved: {error}")
            return
        if self._store(annotation):
            self.message.emit(f"Saved example #{self.current.id}")
            self._forward()

    def _store(self, annotation: dict[str, Any]) -> bool:
        """Save an annotation of the current example; False (with a message) when refused."""
        before = _status(self.project.annotation(self.current.id)) or ""
        try:
            self.project.save_annotation(self.current.id, annotation)
        except AnnotuneError as error:
            self.message.emit(f"Not saved: {error}")
            return False
        # counting a million rows after every key press would cost more than the save itself
        self.statusChanged.emit(before, "accepted")
        return True

    def skip(self) -> None:
        """Mark the current example as skipped and show the next one."""
        if self.current is None:
            return
        before = _status(self.project.annotation(self.current.id)) or ""
        self.project.skip(self.current.id)
        self.statusChanged.emit(before, "skipped")
        self.message.emit(f"Skipped example #{self.current.id}")
        self._forward()

    def _forward(self) -> None:
        if self.position + 1 < len(self.history):
            self.position += 1
            self._display(self.project.example(self.history[self.position]))
        else:
            self._advance()

    def previous(self) -> None:
        self._keep_pending()
        if self.position > 0:
            self.position -= 1
            self._display(self.project.example(self.history[self.position]))
        else:
            self.message.emit("This is the first example of this session")

    def next(self) -> None:
        self._keep_pending()
        self._forward()

    def undo(self) -> None:
        """Undo the last saved decision and show its example again."""
        example_id = self.project.undo()
        if example_id is None:
            self.message.emit("Nothing to undo")
            return
        self.countsChanged.emit()
        self.message.emit(f"Undid the last change to example #{example_id}")
        self.show_example_id(example_id)

    def redo(self) -> None:
        """Redo the last undone decision and show its example."""
        example_id = self.project.redo()
        if example_id is None:
            self.message.emit("Nothing to redo")
            return
        self.countsChanged.emit()
        self.message.emit(f"Redid the change to example #{example_id}")
        self.show_example_id(example_id)
