"""How the desktop shows one annotation kind outside its editor, and the fallback for any kind.

An annotation kind (``Task.annotation_kind``) brings, besides its editor, a ``KindView``:
the one-line summary of an annotation or prediction (tables), the form two payloads are
compared in (does the model disagree?), what the train panel says about label counts, and
the widget Try it draws a prediction in. Plugins register views through the desktop hook
``register_views`` (desktop/hookspecs.py); a kind without one gets ``JsonView``, which shows
the payload as JSON, so a new kind works everywhere before it has views of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtWidgets import QPlainTextEdit, QVBoxLayout, QWidget

Payload = Mapping[str, Any]


class ResultView(QWidget):
    """Try it's picture of one prediction (bars, highlighted text, …)."""

    def show_prediction(self, item: Mapping[str, str], prediction: Payload,
                        labels: Sequence[str]) -> str:
        """Draw ``prediction`` of the typed ``item``; return the line shown under it."""
        raise NotImplementedError

    def fill_with(self, widget: QWidget) -> None:
        """Let ``widget`` take the whole view (views that draw in one widget)."""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(widget)


class KindView:
    """The views of one annotation kind; the defaults suit a kind without labels to count."""

    def recognizes(self, payload: Payload) -> bool:
        """True when ``payload`` is an annotation or prediction of this kind."""
        return False

    def summary(self, payload: Payload, text: str) -> str:
        """Return one short line for a table, e.g. ``pos`` or ``PER “Ada”``."""
        return compact_json(payload)

    def comparable(self, payload: Payload) -> frozenset[Any] | None:
        """Return what two payloads must share to agree (None: they cannot be compared)."""
        return frozenset([compact_json(payload)])

    def count_detail(self, counts: Mapping[str, int]) -> str:
        """Return what the train panel adds after "N labeled examples" about label counts."""
        return ""

    def missing_labels(self, counts: Mapping[str, int]) -> list[str]:
        """Return the labels training needs examples of before it can predict them."""
        return []

    def result_view(self, task: Any, parent: QWidget | None = None) -> ResultView:
        """Return the widget Try it shows this kind's predictions in."""
        return JsonResult(parent)


class JsonView(KindView):
    """The views of a kind no plugin gave views: its payloads as JSON."""


class JsonResult(ResultView):
    """A prediction as indented JSON, for kinds without a result view of their own."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.text = QPlainTextEdit()
        self.text.setObjectName("try_json")
        self.text.setReadOnly(True)
        self.fill_with(self.text)

    def show_prediction(self, item: Mapping[str, str], prediction: Payload,
                        labels: Sequence[str]) -> str:
        self.text.setPlainText(json.dumps(prediction, indent=2, ensure_ascii=False,
                                          default=str))
        return ""


def compact_json(payload: Payload) -> str:
    """Return a payload as one line of JSON with its keys sorted (emoji and CJK kept as is)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
