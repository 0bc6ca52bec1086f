"""Views of span annotations (named entities): typed spans, entity counts, highlighted text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtWidgets import QWidget

from annotune.desktop.editors.textspans import SpanText, entity_colour
from annotune.desktop.kind_views import KindView, Payload, ResultView


class SpansView(KindView):
    """Character spans with a label each (``spans``)."""

    def recognizes(self, payload: Payload) -> bool:
        return payload.get("spans") is not None

    def summary(self, payload: Payload, text: str) -> str:
        parts = []
        for span in payload.get("spans") or []:
            shown = span.get("text") or text[int(span["start"]):int(span["end"])]
            parts.append(f"{span['label']} “{shown}”")
        return " · ".join(parts) or "(no entities)"

    def comparable(self, payload: Payload) -> frozenset[Any] | None:
        return frozenset((s["start"], s["end"], s["label"]) for s in payload.get("spans") or [])

    def count_detail(self, counts: Mapping[str, int]) -> str:
        return (f" with {', '.join(f'{count:,} {label}' for label, count in counts.items())}"
                " entities")

    def result_view(self, task: Any, parent: QWidget | None = None) -> ResultView:
        return HighlightedSpans(task.fields[0], parent)


class HighlightedText(ResultView):
    """A read-only text in which a prediction's spans are painted (entities, an answer)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.text = SpanText()
        self.text.setObjectName("try_highlighted")
        self.fill_with(self.text)


class HighlightedSpans(HighlightedText):
    """The typed text with each predicted entity painted in its type's colour."""

    def __init__(self, field: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.field = field

    def show_prediction(self, item: Mapping[str, str], prediction: Payload,
                        labels: Sequence[str]) -> str:
        text = item[self.field]
        self.text.set_text(text)
        index = {label: i for i, label in enumerate(labels)}
        spans = prediction.get("spans") or []
        self.text.paint_spans((int(s["start"]), int(s["end"]),
                               entity_colour(index.get(s["label"], 0)), False) for s in spans)
        return " · ".join(
            f"{s['label']} “{s.get('text', text[s['start']:s['end']])}” "
            f"({float(s.get('score', 0)):.2f})" for s in spans) or "No entities found"
