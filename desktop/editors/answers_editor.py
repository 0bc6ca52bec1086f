"""The "answers" editor: extractive QA, the answer is a span of the context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from annotune.core.tasks import TaskSettings
from annotune.desktop.editors.base import Editor, field_title
from annotune.desktop.editors.offsets import qt_string
from annotune.desktop.editors.textspans import SpanText, entity_colour, snap_to_words

ANSWER_COLOUR = entity_colour(2, alpha=120)
SUGGESTION_COLOUR = QColor(entity_colour(0, alpha=80))


class AnswersEditor(Editor):
    """Question above (editable), context below; select the answer and press A or Enter.

    N saves "no answer" when the project allows unanswerable questions. Enter with nothing
    selected accepts the saved answer or the model's suggestion.
    """

    def __init__(self, task: Any, settings: TaskSettings, parent: QWidget | None = None):
        super().__init__(task, settings, parent)
        self.answer: dict[str, Any] | None = None  # {"start", "text"} shown now
        self.no_answer = False
        # "no answer" is offered where the task declares it and the project allows it
        self.unanswerable = bool(
            settings.bound_to(task.options).option("allow_unanswerable", False))
        self.question_field = "question" if "question" in task.fields else task.fields[-1]
        self.context_field = "context" if "context" in task.fields else task.fields[0]

        layout = QVBoxLayout(self)
        heading = QLabel(field_title(task, self.question_field))
        bold = heading.font()
        bold.setBold(True)
        heading.setFont(bold)
        layout.addWidget(heading)
        self.question = QLineEdit()
        self.question.setObjectName("question")
        font = self.question.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.question.setFont(font)
        self.question.setToolTip("Edit the question if it is wrong; it is saved with the answer")
        layout.addWidget(self.question)
        context_heading = QLabel(field_title(task, self.context_field))
        context_heading.setFont(bold)
        layout.addWidget(context_heading)
        self.context = SpanText()
        self.context.setObjectName("context")
        layout.addWidget(self.context, 1)

        row = QHBoxLayout()
        self.answer_label = QLabel()
        self.answer_label.setObjectName("suggestion")
        self.answer_label.setWordWrap(True)
        row.addWidget(self.answer_label, 1)
        answer_button = QPushButton("Answer (A)")
        answer_button.setToolTip("Save the selected text as the answer (A or Enter)")
        answer_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        answer_button.clicked.connect(self.accept)
        row.addWidget(answer_button)
        self.no_answer_button = QPushButton("No answer (N)")
        self.no_answer_button.setToolTip("The context does not answer the question (N)")
        self.no_answer_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.no_answer_button.clicked.connect(self.mark_unanswerable)
        self.no_answer_button.setVisible(self.unanswerable)
        row.addWidget(self.no_answer_button)
        layout.addLayout(row)

        self.add_shortcut("A", self.accept)
        self.add_shortcut(Qt.Key.Key_Return, self.accept)
        self.add_shortcut(Qt.Key.Key_Enter, self.accept)
        if self.unanswerable:
            self.add_shortcut("N", self.mark_unanswerable)

    def focus_editor(self) -> None:
        self.context.setFocus()

    def key_help(self) -> list[tuple[str, str]]:
        keys = [("Shift+←/→", "select"), ("A / Enter", "save answer")]
        if self.unanswerable:
            keys.append(("N", "no answer"))
        return keys

    def edited_fields(self) -> dict[str, str] | None:
        """Return the example's fields with the edited question, or None when unchanged."""
        if self.example is None:
            return None
        text = self.question.text()
        if text == str(self.example.fields.get(self.question_field, "")):
            return None
        fields = dict(self.example.fields)
        fields[self.question_field] = text
        return fields

    # -- display ---------------------------------------------------------------------------
    def show_example(self, example: Any, annotation: Mapping[str, Any] | None,
                     suggestion: Mapping[str, Any] | None) -> None:
        self.example = example
        self.question.setText(qt_string(str(example.fields.get(self.question_field, ""))))
        self.context.set_text(str(example.fields.get(self.context_field, "")))
        self.answer, self.no_answer = None, False
        note = ""
        if annotation is not None:
            answers = annotation.get("answers") or []
            if answers:
                self.answer = {"start": int(answers[0]["start"]), "text": answers[0]["text"]}
                note = f"Saved answer: “{self.answer['text']}”"
            else:
                self.no_answer = True
                note = "Saved: no answer"
        elif suggestion:
            if suggestion.get("text"):
                self.answer = {"start": int(suggestion["start"]), "text": suggestion["text"]}
                score = suggestion.get("score")
                shown = f" ({float(score):.2f})" if score is not None else ""
                note = f"Model suggests: “{self.answer['text']}”{shown} — Enter accepts"
            elif self.unanswerable:
                self.no_answer = True
                note = "Model suggests: no answer — Enter accepts"
        self.answer_label.setText(note)
        colour = ANSWER_COLOUR if annotation is not None else SUGGESTION_COLOUR
        if self.answer:
            start = self.answer["start"]
            self.context.paint_spans([(start, start + len(self.answer["text"]), colour, False)])
        else:
            self.context.paint_spans([])

    # -- decisions -------------------------------------------------------------------------
    def accept(self) -> None:
        """Save the selected span as the answer (or the one shown when nothing is selected)."""
        if self.example is None:
            return
        if self.question.hasFocus():
            # Enter after editing the question means "done editing", not "save"
            self.focus_editor()
            return
        text = self.context.text()
        start, end = self.context.selection()
        if start != end:
            start, end = snap_to_words(text, start, end)
            if start == end:  # only spaces or line breaks: an empty answer is no answer
                self.message.emit("Select the answer in the context first (the selection "
                                  "holds only spaces)")
                return
            self.decided.emit({"answers": [{"start": start, "text": text[start:end]}]})
        elif self.answer:
            self.decided.emit({"answers": [dict(self.answer)]})
        elif self.no_answer:
            self.decided.emit({"answers": []})
        else:
            self.message.emit("Select the answer in the context first")

    def mark_unanswerable(self) -> None:
        """Save "no answer" for this question."""
        if self.example is None:
            return
        if not self.unanswerable:
            self.message.emit("This project does not allow unanswerable questions")
            return
        self.decided.emit({"answers": []})
