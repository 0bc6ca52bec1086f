"""The "spans" (NER) and "answers" (QA) editors, driven by real keys and mouse clicks."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QLabel

from annotune.core.plugins import registry
from annotune.desktop.editors.answers_editor import AnswersEditor
from annotune.desktop.editors.spans_editor import SpansEditor
from annotune.desktop.editors.textspans import snap_to_words
from annotune.desktop.labeling import LabelingView

SENTENCE = "Ada Lovelace met Charles Babbage in London."


def _view(qtbot, project, editor_class):
    task = registry().task(project.task_name)
    view = LabelingView(project, task, editor_class(task, project.settings))
    qtbot.addWidget(view)
    qtbot.show_active(view)
    view.start()
    return view


def _select(qtbot, text_view, start, length):
    """Put the cursor at start with Home + Right, then extend it with Shift+Right."""
    text_view.setFocus()
    qtbot.keyClick(text_view, Qt.Key.Key_Home, Qt.KeyboardModifier.ControlModifier)
    for _ in range(start):
        qtbot.keyClick(text_view, Qt.Key.Key_Right)
    for _ in range(length):
        qtbot.keyClick(text_view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)


def test_snap_to_words():
    assert snap_to_words(SENTENCE, 1, 6) == (0, 12)
    assert snap_to_words(SENTENCE, 12, 17) == (13, 16)  # " met " trimmed
    assert snap_to_words(SENTENCE, 3, 3) == (3, 3)


def test_ner_select_label_overlap_delete_accept(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "ner.annotune", "token-classification",
                           ("PER", "LOC"), [{"text": SENTENCE}, {"text": "Nothing here."}])
    view = _view(qtbot, project, SpansEditor)
    editor, text_view = view.editor, view.editor.text_view
    messages = []
    view.message.connect(messages.append)

    _select(qtbot, text_view, 1, 4)  # "da L" snaps to "Ada Lovelace"
    qtbot.keyClick(text_view, Qt.Key.Key_1)
    assert editor.spans == [{"start": 0, "end": 12, "label": "PER"}]

    _select(qtbot, text_view, 36, 6)  # "London"
    qtbot.keyClick(text_view, Qt.Key.Key_2)
    _select(qtbot, text_view, 4, 8)  # "Lovelace met": overlaps the PER entity
    qtbot.keyClick(text_view, Qt.Key.Key_2)
    assert len(editor.spans) == 2
    assert any(m.startswith("Refused: overlaps PER") for m in messages)

    cursor = QTextCursor(text_view.document())
    cursor.setPosition(38)  # inside "London"
    point = text_view.cursorRect(cursor).center()
    qtbot.mouseClick(text_view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert editor.selected == 1
    qtbot.keyClick(text_view, Qt.Key.Key_Delete)
    assert editor.spans == [{"start": 0, "end": 12, "label": "PER"}]

    first = view.current.id
    qtbot.keyClick(text_view, Qt.Key.Key_Return)
    assert view.wait_for_saves()  # written on the save thread
    assert project.annotation(first).payload == {"spans": [{"start": 0, "end": 12,
                                                            "label": "PER"}]}
    assert view.current.id != first
    project.close()


def test_ner_suggestion_is_accepted_with_enter(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "ner.annotune", "token-classification",
                           ("PER", "LOC"), [{"text": SENTENCE}])
    project.save_predictions("bundle", [(1, {"spans": [
        {"start": 36, "end": 42, "label": "LOC", "text": "London", "score": 0.9}]}, 0.9)])
    view = _view(qtbot, project, SpansEditor)
    assert "suggests 1 entities" in view.editor.note.text()
    qtbot.keyClick(view.editor.text_view, Qt.Key.Key_Enter)
    assert view.wait_for_saves()
    assert project.annotation(1).payload["spans"] == [{"start": 36, "end": 42, "label": "LOC"}]
    project.close()


def test_entities_marked_are_kept_when_moving_on_without_enter(qtbot, tmp_path, make_project):
    """PgDn, PgUp and a refresh from new suggestions must not lose entities being marked."""
    project = make_project(tmp_path / "ner.annotune", "token-classification",
                           ("PER", "LOC"), [{"text": SENTENCE}, {"text": "Rome in May."}])
    view = _view(qtbot, project, SpansEditor)
    messages = []
    view.message.connect(messages.append)
    text_view = view.editor.text_view
    first = view.current.id

    _select(qtbot, text_view, 36, 6)  # "London"
    qtbot.keyClick(text_view, Qt.Key.Key_2)
    view.refresh_current()  # pre-annotation finished meanwhile: the mark stays on screen
    assert view.editor.spans == [{"start": 36, "end": 42, "label": "LOC"}]

    qtbot.keyClick(text_view, Qt.Key.Key_PageDown)
    assert view.current.id != first
    assert view.wait_for_saves()
    assert project.annotation(first).payload == {"spans": [{"start": 36, "end": 42,
                                                            "label": "LOC"}]}
    assert f"Saved the entities marked on example #{first}" in messages

    qtbot.keyClick(view.editor.text_view, Qt.Key.Key_PageUp)  # nothing marked: nothing saved
    assert view.wait_for_saves()
    assert view.current.id == first
    assert project.annotation(view.history[1]) is None
    assert view.editor.spans == [{"start": 36, "end": 42, "label": "LOC"}]  # shown as saved
    project.close()


def test_qa_answer_selection_and_no_answer(qtbot, tmp_path, make_project):
    context = "The tower was finished in 1889 in Paris."
    project = make_project(tmp_path / "qa.annotune", "question-answering", (),
                           [{"context": context, "question": "When was it finished?"},
                            {"context": context, "question": "Who painted it?"}],
                           allow_unanswerable=True)
    view = _view(qtbot, project, AnswersEditor)
    editor = view.editor
    assert editor.question.text() == "When was it finished?"
    assert editor.context.toPlainText() == context
    _select(qtbot, editor.context, 26, 3)  # "188" snaps to "1889"
    qtbot.keyClick(editor.context, Qt.Key.Key_A)
    assert view.wait_for_saves()
    assert project.annotation(1).payload == {"answers": [{"start": 26, "text": "1889"}]}
    assert view.current.id == 2
    qtbot.keyClick(editor.context, Qt.Key.Key_N)
    assert view.wait_for_saves()
    assert project.annotation(2).payload == {"answers": []}
    project.close()


def test_qa_enter_without_selection_asks_for_one(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "qa.annotune", "question-answering", (),
                           [{"context": "Short text.", "question": "What?"}])
    view = _view(qtbot, project, AnswersEditor)
    messages = []
    view.message.connect(messages.append)
    qtbot.keyClick(view.editor.context, Qt.Key.Key_Return)
    assert project.annotation(1) is None
    assert messages == ["Select the answer in the context first"]
    assert not view.editor.no_answer_button.isVisible()
    project.close()


def test_mouse_drag_selection_snaps_to_words(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER",),
                           [{"text": SENTENCE}])
    view = _view(qtbot, project, SpansEditor)
    text_view = view.editor.text_view

    def point(position):
        cursor = QTextCursor(text_view.document())
        cursor.setPosition(position)
        return text_view.cursorRect(cursor).center()

    qtbot.mousePress(text_view.viewport(), Qt.MouseButton.LeftButton, pos=point(19))
    qtbot.mouseMove(text_view.viewport(), pos=point(27))
    qtbot.mouseRelease(text_view.viewport(), Qt.MouseButton.LeftButton, pos=point(27))
    assert text_view.selection() == (17, 32)  # "arles Bab" grew to "Charles Babbage"
    qtbot.keyClick(text_view, Qt.Key.Key_1)
    assert view.editor.spans == [{"start": 17, "end": 32, "label": "PER"}]
    project.close()


def test_qa_edited_question_is_saved_with_the_answer(qtbot, tmp_path, make_project):
    context = "The tower was finished in 1889 in Paris."
    project = make_project(tmp_path / "qa.annotune", "question-answering", (),
                           [{"context": context, "question": "When was it built?"}],
                           allow_unanswerable=True)
    view = _view(qtbot, project, AnswersEditor)
    editor = view.editor
    assert not editor.question.isReadOnly()
    editor.question.setFocus()
    qtbot.keyClick(editor.question, Qt.Key.Key_End)
    qtbot.keyClick(editor.question, Qt.Key.Key_Backspace)  # typing: no shortcut fires
    qtbot.keyClicks(editor.question, " and finished?")  # A and N type, not decide
    assert project.annotation(1) is None
    qtbot.keyClick(editor.question, Qt.Key.Key_Return)  # back to the context
    assert editor.context.hasFocus()
    _select(qtbot, editor.context, 26, 4)
    qtbot.keyClick(editor.context, Qt.Key.Key_A)
    assert view.wait_for_saves()
    assert project.example(1).fields["question"] == "When was it built and finished?"
    assert project.annotation(1).payload == {"answers": [{"start": 26, "text": "1889"}]}
    project.close()


def test_entity_types_use_their_label_colours(qtbot, tmp_path, make_project):
    from annotune.desktop import style

    text = "👨‍👩‍👧 José Ramírez visitó Sevilla"
    project = make_project(tmp_path / "ner.annotune", "token-classification",
                           ("PER", "LOC"), [{"text": text}])
    project.save_predictions("bundle", [(1, {"spans": [
        {"start": 6, "end": 18, "label": "PER"}, {"start": 26, "end": 33, "label": "LOC"}]},
        0.4)])
    view = _view(qtbot, project, SpansEditor)
    legend = {label: view.editor.findChild(QLabel, f"type_{label}") for label in ("PER", "LOC")}
    for index, label in enumerate(("PER", "LOC")):
        assert style.label_colour(index).name() in legend[label].styleSheet()
    painted = {selection.cursor.selectedText(): selection.format.background().color().name()
               for selection in view.editor.text_view.extraSelections()}
    assert painted == {"José Ramírez": style.label_colour(0).name(),
                       "Sevilla": style.label_colour(1).name()}
    project.close()
