"""Every SQuAD reference answer, shown in the span view, is painted and selected as itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotune.desktop.editors.textspans import SpanText, entity_colour

SQUAD = (Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "squad"
         / "squad-v1.1-articles-a.json")


@pytest.mark.skipif(not SQUAD.is_file(), reason=f"needs the SQuAD sample at {SQUAD}")
def test_squad_answers_round_trip_through_the_span_view(qtbot):
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    view = SpanText()
    qtbot.addWidget(view)
    checked = 0
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            view.set_text(context)
            answers = {(a["answer_start"], a["text"])
                       for qa in paragraph["qas"] for a in qa["answers"]}
            for start, text in sorted(answers):
                end = start + len(text)
                view.paint_spans([(start, end, entity_colour(0), False)])
                [painted] = [s.cursor.selectedText() for s in view.extraSelections()]
                assert painted == text.replace("\n", "\u2029"), (article["title"], start)
                view.select(start, end)
                assert view.selection() == (start, end), (article["title"], start)
                checked += 1
    assert checked > 5000
