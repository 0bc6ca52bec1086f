"""The "label" editor in the labeling view, driven by real key presses."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from annotune.core.plugins import registry
from annotune.desktop.editors.label_editor import LabelEditor
from annotune.desktop.labeling import LabelingView


def _view(qtbot, project):
    task = registry().task(project.task_name)
    view = LabelingView(project, task, LabelEditor(task, project.settings))
    qtbot.addWidget(view)
    qtbot.show_active(view)
    view.start()
    return view


def test_label_key_saves_and_shows_next(qtbot, sentiment_project):
    view = _view(qtbot, sentiment_project)
    first = view.current.id
    qtbot.keyClick(view.editor, Qt.Key.Key_2)
    assert view.wait_for_saves()  # written on the save thread
    stored = sentiment_project.annotation(first)
    assert stored.status == "accepted" and stored.payload == {"label": "pos"}
    assert view.current.id != first
    assert sentiment_project.count(status="accepted") == 1


def test_skip_undo_redo(qtbot, sentiment_project):
    view = _view(qtbot, sentiment_project)
    first = view.current.id
    qtbot.keyClick(view.editor, Qt.Key.Key_S)
    assert view.wait_for_saves()
    assert sentiment_project.annotation(first).status == "skipped"
    second = view.current.id
    qtbot.keyClick(view.editor, Qt.Key.Key_1)
    assert view.wait_for_saves()
    assert sentiment_project.annotation(second).payload == {"label": "neg"}
    view.undo()
    assert view.wait_for_saves()
    assert sentiment_project.annotation(second) is None
    assert view.current.id == second
    view.undo()
    assert view.wait_for_saves()
    assert sentiment_project.annotation(first) is None
    view.redo()
    assert view.wait_for_saves()
    assert sentiment_project.annotation(first).status == "skipped"


def test_previous_and_next_keys(qtbot, sentiment_project):
    view = _view(qtbot, sentiment_project)
    first = view.current.id
    qtbot.keyClick(view.editor, Qt.Key.Key_1)
    qtbot.keyClick(view.editor, Qt.Key.Key_Left)
    assert view.current.id == first
    assert view.editor.buttons["neg"].isChecked()
    qtbot.keyClick(view.editor, Qt.Key.Key_Right)
    assert view.current.id != first


def test_multi_label_toggles_then_enter(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "topics.annotune", "text-classification",
                           ("sport", "money", "tech"),
                           [{"text": "a match sponsored by a bank"}, {"text": "new phones"}],
                           multi_label=True)
    view = _view(qtbot, project)
    first = view.current.id
    qtbot.keyClick(view.editor, Qt.Key.Key_1)
    qtbot.keyClick(view.editor, Qt.Key.Key_2)
    qtbot.keyClick(view.editor, Qt.Key.Key_1)
    qtbot.keyClick(view.editor, Qt.Key.Key_3)
    assert project.annotation(first) is None  # toggles alone save nothing
    qtbot.keyClick(view.editor, Qt.Key.Key_Return)
    assert view.wait_for_saves()
    assert project.annotation(first).payload == {"labels": ["money", "tech"]}
    assert view.current.id != first
    project.close()


def test_pair_fields_have_headings(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "nli.annotune", "pair-classification",
                           ("entailment", "contradiction"),
                           [{"text": "A man sleeps.", "text_pair": "Someone rests."}])
    view = _view(qtbot, project)
    editor = view.editor
    assert editor.field_views["text"].text() == "A man sleeps."
    assert editor.field_views["text_pair"].text() == "Someone rests."
    assert editor.field_views["text"].y() < editor.field_views["text_pair"].y()
    project.close()


def test_suggestion_enter_and_uncertainty_order(qtbot, sentiment_project):
    project = sentiment_project
    project.save_predictions("bundle", [
        (4, {"label": "pos", "score": 0.55, "probabilities": {"neg": 0.45, "pos": 0.55}}, 0.55),
        (2, {"label": "neg", "score": 0.9, "probabilities": {"neg": 0.9, "pos": 0.1}}, 0.9)])
    view = _view(qtbot, project)
    # suggestions are stored for unlabeled examples: the least sure comes first, said in words
    assert view.uncertain.isChecked() and view.order_note.isVisible()
    assert "least sure about" in view.order_note.text()
    assert view.current.id == 4
    view.uncertain.setChecked(False)
    assert view.current.id == 1 and not view.order_note.isVisible()
    view.uncertain.setChecked(True)
    assert view.current.id == 4  # least confident first
    assert "pos (0.55)" in view.editor.suggestion_label.text()
    assert view.editor.buttons["pos"].isChecked()
    qtbot.keyClick(view.editor, Qt.Key.Key_Return)
    assert view.wait_for_saves()
    assert project.annotation(4).payload == {"label": "pos"}
    assert view.current.id == 2


def test_import_order_without_suggestions_for_unlabeled_examples(qtbot, sentiment_project):
    project = sentiment_project
    project.save_annotation(3, {"label": "neg"})
    project.save_predictions("bundle", [(3, {"label": "neg", "score": 0.51}, 0.51)])
    view = _view(qtbot, project)  # the only suggestion is on a labeled example
    assert not view.uncertain.isChecked() and not view.order_note.isVisible()
    assert view.current.id == 1


def test_each_label_button_shows_its_label_colour(qtbot, tmp_path, make_project):
    from annotune.desktop import style

    project = make_project(tmp_path / "p.annotune", "text-classification",
                           ("négatif", "neutre 🍕", "positif"), [{"text": "José"}])
    view = _view(qtbot, project)

    def shown() -> list[str]:
        return [button.icon().pixmap(14, 14).toImage().pixelColor(7, 7).name()
                for button in view.editor.buttons.values()]

    assert shown() == [style.label_colour(i, style.LIGHT).name() for i in range(3)]
    app = QApplication.instance()
    style.apply_style(app, Qt.ColorScheme.Dark)
    try:
        dark = [style.label_colour(i, style.DARK).name() for i in range(3)]
        qtbot.waitUntil(lambda: shown() == dark, timeout=2000)  # the palette event is queued
    finally:
        style.apply_style(app, Qt.ColorScheme.Light)
    project.close()
