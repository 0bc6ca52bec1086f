"""The train panel before a run: what the labels allow, words for settings, a window that fits."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow

from annotune.core.formats.base import ImportRecord
from annotune.core.plugins import registry
from annotune.desktop.train_panel import TrainPanel, readiness

SCREEN_HEIGHT = 1000
TITLE_BAR = 40  # window decorations above the client area


def labeled(project, labels):
    project.add_examples([ImportRecord(fields={"text": f"avis n°{i} 🍕 José"},
                                       annotation={"label": label}, line=i + 1)
                          for i, label in enumerate(labels)], source="test")
    return project


def panel_for(qtbot, project):
    panel = TrainPanel(project, registry().task(project.task_name))
    qtbot.addWidget(panel)
    return panel


def test_the_panel_says_how_many_examples_are_labeled(qtbot, tmp_path, make_project):
    project = labeled(make_project(tmp_path / "p.annotune", "text-classification",
                                   ("neg", "pos")), ["neg"] * 3 + ["pos"] * 2)
    panel = panel_for(qtbot, project)
    panel._described = True  # the device is not what this test looks at
    panel.panel_shown()
    expected = "5 labeled examples (neg 3, pos 2) — ready to train."
    qtbot.waitUntil(lambda: panel.status.text() == expected, timeout=10_000)  # counted aside
    project.add_examples([ImportRecord(fields={"text": "encore"}, annotation={"label": "pos"},
                                       line=1)], source="more")
    panel.panel_shown()  # counted again each time the tab is shown
    qtbot.waitUntil(lambda: panel.status.text().startswith("6 labeled examples (neg 3, pos 3)"),
                    timeout=10_000)
    project.close()


def test_too_few_or_one_sided_labels_say_what_to_do(qtbot, tmp_path, make_project):
    task = registry().task("text-classification")
    assert readiness({"labeled": 0, "labels": {"neg": 0, "pos": 0}}, task).startswith(
        "No labeled examples yet: label some on the Label tab")
    assert readiness({"labeled": 1, "labels": {"neg": 1, "pos": 0}}, task) == (
        "1 labeled example (neg 1, pos 0) — training needs at least 2: label a few more on "
        "the Label tab.")
    assert readiness({"labeled": 592, "labels": {"neg": 592, "pos": 0}}, task) == (
        "592 labeled examples (neg 592, pos 0) — no examples of pos yet: label some, or the "
        "model can never predict it.")
    ner = registry().task("token-classification")
    assert readiness({"labeled": 40, "labels": {"PER": 31, "LOC": 2}}, ner) == (
        "40 labeled examples with 31 PER, 2 LOC entities — ready to train.")


def test_question_answering_warns_that_a_few_hundred_questions_make_a_weak_model():
    task = registry().task("question-answering")
    advice = readiness({"labeled": 300, "labels": {}}, task).split("\n")[1]
    assert advice.startswith("300 labeled questions: question answering models learn from "
                             "thousands of questions.")
    assert "400 questions gave an F1 of about 25" in advice  # docs/benchmarks.md's figure
    assert task.training_advice(5000) is None
    assert registry().task("text-classification").training_advice(10) is None


def test_the_measured_precision_is_said_in_words(qtbot, tmp_path, make_project):
    panel = panel_for(qtbot, make_project(tmp_path / "p.annotune", "text-classification",
                                          ("neg", "pos")))
    probe = {"fp32_ms": 148.0, "bf16_ms": 100.0, "chosen": "bf16", "batch": 8, "length": 15}
    panel._notice({"event": "precision", "precision": "bf16", "probe": probe,
                   "message": "bf16 ran 1.48x the speed of fp32 on 8 x 15-token steps"})
    assert panel.status.text() == ("Half precision (bf16) was 1.48× faster on this machine, "
                                   "so training used it.")
    assert panel.status.toolTip() == ("Measured on 8 examples of 15 tokens per step: "
                                      "fp32 148.0 ms, bf16 100.0 ms")
    panel.project.close()


def test_advanced_settings_have_titles_and_keep_the_window_on_a_small_screen(
        qtbot, tmp_path, make_project):
    panel = TrainPanel(make_project(tmp_path / "p.annotune", "text-classification",
                                    ("neg", "pos")), registry().task("text-classification"))
    window = QMainWindow()
    qtbot.addWidget(window)
    window.setCentralWidget(panel)
    window.show()
    window.resize(900, window.minimumSizeHint().height())
    qtbot.wait(10)
    closed = window.height()
    titles = {label.text() for label in panel.advanced.findChildren(QLabel)}
    assert {"Warm-up share", "Random seed", "Gradient clipping"} <= titles
    assert not any("_" in title for title in titles)
    assert "(warmup_ratio)" in panel.advanced_inputs["warmup_ratio"].toolTip()

    panel.advanced_toggle.setChecked(True)
    qtbot.wait(10)
    assert panel.advanced.isVisible()
    assert window.minimumSizeHint().height() + TITLE_BAR <= SCREEN_HEIGHT - 200
    assert window.height() + TITLE_BAR <= SCREEN_HEIGHT - 200
    panel.advanced_toggle.setChecked(False)
    qtbot.waitUntil(lambda: window.height() == closed, timeout=2000)  # the room comes back
    panel.project.close()
