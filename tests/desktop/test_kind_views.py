"""Views per annotation kind: registered ones are used, an unknown kind falls back to JSON."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QLabel, QVBoxLayout

from annotune.core.plugins import registry
from annotune.desktop import summaries, train_panel, tryit
from annotune.desktop.hookspecs import hookimpl
from annotune.desktop.kind_views import JsonView, KindView, ResultView
from annotune.desktop.plugins import build_editor_registry, editor_registry
from annotune.desktop.summaries import disagrees, summarize
from annotune.desktop.train_panel import readiness
from annotune.desktop.tryit import TryItPanel


class StarsResult(ResultView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.stars = QLabel()
        QVBoxLayout(self).addWidget(self.stars)

    def show_prediction(self, item, prediction, labels):
        self.stars.setText("★" * int(prediction["stars"]))
        return f"{prediction['stars']} stars"


class StarsView(KindView):
    """A third-party kind: a rating of 1 to 5 stars."""

    def recognizes(self, payload):
        return "stars" in payload

    def summary(self, payload, text):
        return "★" * int(payload["stars"])

    def comparable(self, payload):
        return frozenset([int(payload["stars"])])

    def count_detail(self, counts):
        return f" ({sum(counts.values())} ratings)"

    def result_view(self, task, parent=None):
        return StarsResult(parent)


class StarsPlugin:
    @hookimpl
    def register_views(self, register):
        register("stars", StarsView())


class RatingTask:
    """Just enough of a task for the views: one text field, a kind of its own."""

    name = title = "rating"
    fields = ("text",)
    short_fields = ()

    def __init__(self, kind):
        self.annotation_kind = kind


class StubPredictor:
    def __init__(self, prediction):
        self.prediction = prediction

    def predict_one(self, item):
        return self.prediction


@pytest.fixture
def with_stars(monkeypatch):
    """Make the process's registry one with the stars plugin installed."""
    loaded = build_editor_registry(extra_plugins=(StarsPlugin(),))
    assert not loaded.failures
    for module in (summaries, train_panel, tryit):
        monkeypatch.setattr(module, "editor_registry", lambda: loaded)
    return loaded


def _try(qtbot, project, task, prediction, text):
    panel = TryItPanel(project, task)
    qtbot.addWidget(panel)
    panel.predictor = StubPredictor(prediction)
    panel.inputs["text"].setPlainText(text)
    panel.predict()
    return panel


def test_a_registered_view_draws_try_it_summaries_and_readiness(qtbot, sentiment_project,
                                                                 with_stars):
    task = RatingTask("stars")
    assert isinstance(with_stars.view("stars"), StarsView)
    panel = _try(qtbot, sentiment_project, task, {"stars": 4}, "مطعم رائع 🍕 Jose\u0301")
    assert isinstance(panel.result, StarsResult) and panel.result.stars.text() == "★★★★"
    assert panel.answer_label.text() == "4 stars"
    assert summarize({"stars": 2}, "家族 👨‍👩‍👧", kind="stars") == "★★"
    assert summarize({"stars": 2}) == "★★"  # recognized without being told the kind
    assert disagrees({"stars": 2}, {"stars": 3}) and not disagrees({"stars": 2}, {"stars": 2})
    assert readiness({"labeled": 3, "labels": {"1": 1, "5": 2}}, task).startswith(
        "3 labeled examples (3 ratings) — ready to train.")


def test_a_kind_without_views_is_shown_as_json_instead_of_failing(qtbot, sentiment_project):
    task = RatingTask("mood")
    assert isinstance(editor_registry().view("mood"), JsonView)
    prediction = {"mood": "שמח", "emoji": "🍕", "score": 0.5}
    panel = _try(qtbot, sentiment_project, task, prediction, "Jose\u0301\r\nשלום")
    assert json.loads(panel.result.text.toPlainText()) == prediction
    assert panel.answer_label.text() == ""
    line = summarize(prediction, kind="mood")
    assert json.loads(line) == prediction and "\n" not in line and "🍕" in line
    assert summarize({"mood": "שמח"}) == '{"mood": "שמח"}'  # no kind recognizes it
    assert disagrees({"mood": "a"}, {"mood": "b"}, kind="mood")
    assert readiness({"labeled": 3, "labels": {"a": 0}}, task) == (
        "3 labeled examples — ready to train.")


def test_the_builtin_kinds_keep_their_summaries_with_or_without_the_kind():
    text = "Jose\u0301 met 👨‍👩‍👧 in 東京"
    tokyo = text.index("東京")
    cases = [("label", {"label": "pos"}, "pos"), ("label", {"labels": ["a", "🍕"]}, "a, 🍕"),
             ("label", {"labels": []}, "(none)"),
             ("spans", {"spans": [{"start": 0, "end": 5, "label": "PER"},
                                  {"start": tokyo, "end": tokyo + 2, "label": "LOC"}]},
              "PER “Jose\u0301” · LOC “東京”"),
             ("spans", {"spans": []}, "(no entities)"),
             ("answers", {"answers": [{"start": tokyo, "text": "東京"}]}, "“東京”"),
             ("answers", {"answers": []}, "(no answer)"),
             ("answers", {"text": "", "score": 0.1}, "(no answer)")]
    for kind, payload, expected in cases:
        assert summarize(payload, text, kind=kind) == expected
        assert summarize(payload, text) == expected
    assert not disagrees({"answers": [{"start": 0, "text": " 東京 "}]}, {"text": "東京"})
    assert disagrees({"label": "pos"}, {"label": "neg"}, kind="label")


@pytest.mark.parametrize("name", ["text-classification", "pair-classification",
                                  "token-classification", "question-answering"])
def test_every_builtin_task_has_registered_views(name):
    kind = registry().task(name).annotation_kind
    assert not isinstance(editor_registry().view(kind), JsonView)
