"""The Try-it panel's views of entity and answer predictions (a stand-in predictor)."""

from __future__ import annotations

from annotune.core.plugins import registry
from annotune.desktop.tryit import TryItPanel, find_bundles


class StubPredictor:
    """Answers like a Predictor would, without a model."""

    def __init__(self, prediction):
        self.prediction = prediction
        self.seen = []

    def predict_one(self, item):
        self.seen.append(item)
        return self.prediction


def _panel(qtbot, project, prediction):
    panel = TryItPanel(project, registry().task(project.task_name))
    qtbot.addWidget(panel)
    panel.show()
    panel.predictor = StubPredictor(prediction)
    return panel


def test_entities_are_highlighted(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER", "LOC"))
    panel = _panel(qtbot, project, {"spans": [
        {"start": 0, "end": 3, "label": "PER", "text": "Ada", "score": 0.97},
        {"start": 12, "end": 18, "label": "LOC", "text": "London", "score": 0.88}]})
    qtbot.keyClicks(panel.inputs["text"], "Ada visited London.")
    qtbot.waitUntil(lambda: panel.last_prediction is not None, timeout=3000)
    selections = panel.highlighted.extraSelections()
    assert [(s.cursor.selectionStart(), s.cursor.selectionEnd()) for s in selections] == [
        (0, 3), (12, 18)]
    assert panel.answer_label.text() == "PER “Ada” (0.97) · LOC “London” (0.88)"
    project.close()


def test_answer_needs_both_fields_then_is_highlighted(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "qa.annotune", "question-answering", ())
    panel = _panel(qtbot, project, {"text": "1889", "start": 26, "end": 30, "score": 0.8})
    panel.inputs["question"].setText("When?")
    panel.predict()
    assert panel.predictor.seen == []  # no context yet: nothing to ask
    panel.inputs["context"].setPlainText("The tower was finished in 1889 in Paris.")
    panel.predict()
    assert panel.predictor.seen[-1] == {
        "question": "When?", "context": "The tower was finished in 1889 in Paris."}
    (selection,) = panel.highlighted.extraSelections()
    assert (selection.cursor.selectionStart(), selection.cursor.selectionEnd()) == (26, 30)
    assert panel.answer_label.text() == "Answer: “1889” (0.80)"
    project.close()


def test_find_bundles(tmp_path):
    bundle = tmp_path / "runs" / "3" / "bundle-int8"
    bundle.mkdir(parents=True)
    (bundle / "manifest.json").write_text("{}")
    (tmp_path / "runs" / "3" / "model").mkdir()
    assert find_bundles(tmp_path / "runs") == [bundle]
    assert find_bundles(tmp_path / "missing") == []
