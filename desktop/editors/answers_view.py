"""Views of answer annotations (extractive QA): the answer text, highlighted in its context."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtWidgets import QWidget

from annotune.desktop.editors.spans_view import HighlightedText
from annotune.desktop.editors.textspans import entity_colour
from annotune.desktop.kind_views import KindView, Payload, ResultView


class AnswersView(KindView):
    """Annotations hold ``answers`` (the first counts); predictions hold one ``text``."""

    def recognizes(self, payload: Payload) -> bool:
        return payload.get("answers") is not None or "text" in payload

    def summary(self, payload: Payload, text: str) -> str:
        if payload.get("answers") is not None:
            answers = payload["answers"]
            return f"“{answers[0]['text']}”" if answers else "(no answer)"
        if "text" in payload:
            return f"“{payload['text']}”" if payload["text"] else "(no answer)"
        return ""

    def comparable(self, payload: Payload) -> frozenset[Any] | None:
        if payload.get("answers") is not None:
            answers = payload["answers"]
            return frozenset([answers[0]["text"].strip()] if answers else [""])
        return frozenset([str(payload["text"]).strip()]) if "text" in payload else None

    def result_view(self, task: Any, parent: QWidget | None = None) -> ResultView:
        return HighlightedAnswer(parent)


class HighlightedAnswer(HighlightedText):
    """The context with the predicted answer painted, or a word that there is none."""

    def show_prediction(self, item: Mapping[str, str], prediction: Payload,
                        labels: Sequence[str]) -> str:
        self.text.set_text(item.get("context", ""))
        score = float(prediction.get("score") or 0.0)
        if not prediction.get("text"):
            self.text.paint_spans([])
            return f"No answer in this context ({score:.2f})"
        start, end = int(prediction["start"]), int(prediction["end"])
        self.text.paint_spans([(start, end, entity_colour(2, 140), True)])
        return f"Answer: “{prediction['text']}” ({score:.2f})"
