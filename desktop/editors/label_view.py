"""Views of label annotations (classification, pairs): label names, counts, probability bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QWidget

from annotune.desktop import style
from annotune.desktop.kind_views import KindView, Payload, ResultView


class LabelView(KindView):
    """One label (``label``) or several (``labels``, multi-label)."""

    def recognizes(self, payload: Payload) -> bool:
        return payload.get("labels") is not None or payload.get("label") is not None

    def summary(self, payload: Payload, text: str) -> str:
        if payload.get("labels") is not None:
            return ", ".join(map(str, payload["labels"])) or "(none)"
        return str(payload["label"]) if payload.get("label") is not None else ""

    def comparable(self, payload: Payload) -> frozenset[Any] | None:
        if payload.get("labels") is not None:
            return frozenset(payload["labels"])
        return frozenset([payload["label"]]) if payload.get("label") is not None else None

    def count_detail(self, counts: Mapping[str, int]) -> str:
        return f" ({', '.join(f'{label} {count:,}' for label, count in counts.items())})"

    def missing_labels(self, counts: Mapping[str, int]) -> list[str]:
        # a label without examples is one the model can never predict
        return [label for label, count in counts.items() if count == 0]

    def result_view(self, task: Any, parent: QWidget | None = None) -> ResultView:
        return ProbabilityBars(parent)


class ProbabilityBars(ResultView):
    """One bar per label, most probable first, each in its label's colour."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bars = QGridLayout(self)
        self.bars.setAlignment(Qt.AlignmentFlag.AlignTop)

    def show_prediction(self, item: Mapping[str, str], prediction: Payload,
                        labels: Sequence[str]) -> str:
        while self.bars.count():
            widget = self.bars.takeAt(0).widget()
            if widget is not None:
                # hidden at once: until the event loop deletes it, it would still be painted
                widget.setParent(None)
                widget.deleteLater()
        probabilities = prediction.get("probabilities") or {}
        chosen = set(prediction.get("labels") or [prediction.get("label")])
        ordered = sorted(probabilities.items(), key=lambda kv: kv[1], reverse=True)
        index = {label: i for i, label in enumerate(labels)}
        for row, (label, p) in enumerate(ordered):
            name = QLabel(f"<b>{escape(str(label))}</b>" if label in chosen
                          else escape(str(label)))
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(int(round(1000 * float(p))))
            bar.setFormat(f"{100 * float(p):.1f}%")
            bar.setObjectName(f"prob_{label}")
            colours = bar.palette()  # each label in its own colour, as in the editor
            colours.setColor(QPalette.ColorRole.Highlight,
                             style.label_colour(index.get(label, row)))
            colours.setColor(QPalette.ColorRole.HighlightedText, colours.color(
                QPalette.ColorRole.Text))
            bar.setPalette(colours)
            self.bars.addWidget(name, row, 0)
            self.bars.addWidget(bar, row, 1)
            # shown now, not on the layout's queued show: the old bars are already hidden
            name.show()
            bar.show()
        return f"Prediction: {', '.join(str(c) for c in chosen)}"
