"""Every SQuAD reference answer, shown in the span view, is painted and selected as itself."""

from __future__ import annotations

import json

from annotune.desktop.editors.textspans import SpanText, entity_colour


def test_squad_answers_round_trip_through_the_span_view(qtbot, datasets_dir):
    squad = datasets_dir / "squad" / "squad-v1.1-articles-a.json"
    data = json.loads(squad.read_text(encoding="utf-8"))
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
