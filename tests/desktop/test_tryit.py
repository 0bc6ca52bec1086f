"""The Try-it panel's views of entity and answer predictions (a stand-in predictor)."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QProgressBar

from annotune.core.bundle_records import record_bundle
from annotune.core.plugins import registry
from annotune.desktop.tryit import TryItPanel, find_bundles, int8_cost


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
    selections = panel.result.text.extraSelections()
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
    (selection,) = panel.result.text.extraSelections()
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


class PagePredictor:
    """Predicts "pos" for every item, like a classification bundle, without a model."""

    def __init__(self, task):
        self.task = task
        self.labels = ("neg", "pos")
        self.pages = 0

    def predict(self, items):
        self.pages += 1
        return [{"label": "pos", "score": 0.75, "probabilities": {"neg": 0.25, "pos": 0.75}}
                for _ in items]


def test_preannotation_shows_its_rate_and_stops_when_asked(qtbot, tmp_path, make_project):
    rows = [{"text": f"review {i}"} for i in range(3000)]  # three pages of 1,024
    project = make_project(tmp_path / "many.annotune", "text-classification", ("neg", "pos"),
                           rows)
    task = registry().task(project.task_name)
    panel = TryItPanel(project, task)
    qtbot.addWidget(panel)
    panel.predictor, panel.bundle = PagePredictor(task), tmp_path / "bundle"
    shown = []
    panel.preannotateProgress.connect(
        lambda done, total: shown.append(panel.status.text()) or panel.stop_preannotate())
    with qtbot.waitSignal(panel.preannotated, timeout=30_000) as stored:
        panel.preannotate()
        assert panel.preannotate_button.text() == "Stop pre-annotating"
    # the stop reaches the worker after the page it is on (or the next one, since progress
    # travels to the window through the event loop): never all three
    count = stored.args[0]
    assert count in (1024, 2048) and panel.predictor.pages == count // 1024
    assert shown[0].startswith("Pre-annotating… 1,024 of 3,000 · ")
    assert "examples/s" in shown[0] and "left" in shown[0]
    assert panel.status.text() == (f"Stopped: suggestions stored for {count:,} examples "
                                   "(they stay).")
    assert panel.preannotate_button.text() == "Pre-annotate unlabeled"
    assert project.prediction(1) is not None and project.prediction(3000) is None
    project.close()


def _bundle_folder(folder, quantized=False, cost=None):
    folder.mkdir(parents=True)
    manifest = {"task": "text-classification",
                "quantization": {"scheme": "per-tensor"} if quantized else None,
                "validation": {"metric": "f1", "int8_cost_points": cost,
                               "cost_limit_points": 0.5} if cost is not None else None}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_bundles_exported_outside_the_runs_folder_are_listed(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "demo.annotune", "text-classification", ("neg", "pos"))
    run_dir = project.runs_dir / "1"
    (run_dir / "model").mkdir(parents=True)
    fp32 = _bundle_folder(tmp_path / "bundle-fp32")
    int8 = _bundle_folder(tmp_path / "bundle-int8", quantized=True, cost=0.2)
    for bundle in (fp32, int8):
        record_bundle(run_dir, bundle)  # what every export does
    panel = TryItPanel(project, registry().task(project.task_name))
    qtbot.addWidget(panel)
    panel.load_bundle = lambda path: None  # no model here: only the list is checked
    panel.refresh_bundles()
    listed = {panel.bundles.itemText(i) for i in range(panel.bundles.count())}
    assert listed == {"bundle-fp32 · fp32 · run 1", "bundle-int8 · int8 · run 1"}
    assert "F1" in int8_cost(json.loads((int8 / "manifest.json").read_text()))
    project.close()


def test_without_a_bundle_the_panel_says_how_to_get_one(qtbot, sentiment_project):
    panel = TryItPanel(sentiment_project, registry().task(sentiment_project.task_name))
    qtbot.addWidget(panel)
    panel.show()
    assert panel.bundles.count() == 0
    assert "Train" in panel.status.text() and "Export bundle" in panel.status.text()
    assert not panel.preannotate_button.isEnabled()


def test_an_int8_bundle_over_its_allowance_says_so():
    manifest = {"quantization": {"scheme": "per-channel"},
                "validation": {"metric": "macro_f1", "int8_cost_points": 1.2,
                               "cost_limit_points": 0.5}}
    text = int8_cost(manifest)
    assert text.startswith("⚠ int8 costs 1.20 points of Macro F1")
    assert "fp32" in text
    assert int8_cost({"quantization": None, "validation": {"int8_cost_points": None}}) == ""


def test_a_new_prediction_replaces_the_bars_at_once(qtbot, sentiment_project):
    panel = _panel(qtbot, sentiment_project,
                   {"label": "pos", "score": 0.9, "probabilities": {"neg": 0.1, "pos": 0.9}})
    panel.inputs["text"].setPlainText("Jose\u0301 loved the 🍕")
    panel.predict()
    panel.predict()  # again before the event loop deletes the first bars
    # no event processing here: the new bars show at once, the old ones are gone at once
    shown = [bar for bar in panel.result.findChildren(QProgressBar) if bar.isVisible()]
    assert sorted(bar.objectName() for bar in shown) == ["prob_neg", "prob_pos"]


class FindingPredictor:
    """Predicts spans where given words occur in the text it receives (code-point offsets)."""

    def __init__(self, words):
        self.words = words
        self.seen = []

    def predict_one(self, item):
        self.seen.append(item)
        text = item["context"] if "context" in item else item["text"]
        spans = [{"start": text.index(word), "end": text.index(word) + len(word),
                  "label": "PER", "text": word, "score": 0.9} for word in self.words]
        if "context" not in item:
            return {"spans": spans}
        return {"text": spans[0]["text"], "start": spans[0]["start"], "end": spans[0]["end"],
                "score": 0.9}


HARD_TEXT = ("Jose\u0301 et 👨\u200d👩\u200d👧 à 東京に行った\r\n"
             "ثم أكلنا 🍕 مع Zoë")
HARD_WORDS = ["Jose\u0301", "👨\u200d👩\u200d👧", "東京", "🍕", "Zoë"]


def _painted(panel) -> list[str]:
    return [s.cursor.selectedText() for s in panel.result.text.extraSelections()]


def test_entities_are_painted_exactly_on_astral_joined_combined_and_rtl_text(
        qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER", "LOC"))
    panel = _panel(qtbot, project, None)
    panel.predictor = FindingPredictor(HARD_WORDS)
    panel.inputs["text"].setPlainText(HARD_TEXT)
    panel.predict()
    assert panel.predictor.seen  # the offsets are the predictor's, on the text it was given
    assert _painted(panel) == HARD_WORDS
    project.close()


def test_an_answer_is_painted_exactly_after_emoji_and_a_line_break(qtbot, tmp_path,
                                                                    make_project):
    project = make_project(tmp_path / "qa.annotune", "question-answering", ())
    panel = _panel(qtbot, project, None)
    panel.predictor = FindingPredictor(["Zoë"])
    panel.inputs["question"].setText("Who?")
    panel.inputs["context"].setPlainText(HARD_TEXT)
    panel.predict()
    assert _painted(panel) == ["Zoë"]
    project.close()
