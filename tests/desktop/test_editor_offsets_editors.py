"""What the person selects in the NER and QA editors is what is stored, and what is painted."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from annotune.core.plugins import registry
from annotune.desktop.editors.answers_editor import AnswersEditor
from annotune.desktop.editors.spans_editor import SpansEditor
from annotune.desktop.labeling import LabelingView

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧
JOSE = "Jose\u0301"  # "José" with a combining accent

# (kind, text, the word a person selects in it)
CASES = [
    ("emoji", "I 🍕🍕 love Paris now", "Paris"),
    ("emoji itself", "I 🍕🍕 love Paris now", "🍕"),
    ("ZWJ family", f"Our {FAMILY} flew to Paris today", "Paris"),
    ("ZWJ family itself", f"Our {FAMILY} flew to Paris today", FAMILY),
    ("CRLF", "Dear team,\r\nwe met in Paris\r\non Monday", "Paris"),
    ("lone CR", "Dear team,\rwe met in Paris\ron Monday", "Paris"),
    ("LF and separators", "one\ntwo\u2028three\u2029four\fPage Paris\x0bend", "Paris"),
    ("CJK", "東京に行った", "東京"),
    ("combining accent", f"{JOSE} Martí lives in Paris", JOSE),
    ("RTL", "ذهب أحمد إلى Paris مع דוד כהן", "أحمد"),
    ("RTL then Latin", "ذهب أحمد إلى Paris مع דוד כהן", "Paris"),
    ("Hebrew", "ذهب أحمد إلى Paris مع דוד כהן", "כהן"),
    ("tabs", "name\tParis\tcity", "Paris"),
    ("byte-order mark", "\ufeffParis is big", "Paris"),
    ("reversed byte-order mark", "\ufffeParis is big", "Paris"),
    ("everything", f"{FAMILY} {JOSE}\r\n東京\t🍕 \u200fשלום Paris\r\n", "Paris"),
]
IDS = [case[0] for case in CASES]


def _view(qtbot, project, editor_class):
    task = registry().task(project.task_name)
    view = LabelingView(project, task, editor_class(task, project.settings))
    qtbot.addWidget(view)
    qtbot.show_active(view)
    view.start()
    return view


def _find(text_view, word: str) -> QTextCursor:
    """Return a cursor over the first place the document shows word (its own positions)."""
    cursor = text_view.document().find(word)
    assert not cursor.isNull(), word
    return cursor


def _select_visible(text_view, word: str) -> None:
    """Select a word by where the document shows it, as a mouse drag over it would."""
    text_view.setFocus()
    text_view.setTextCursor(_find(text_view, word))
    assert text_view.textCursor().selectedText() == word


def _painted(text_view) -> list[tuple[int, int, str]]:
    """Return the painted ranges in the document's positions, with the text they cover."""
    return [(s.cursor.selectionStart(), s.cursor.selectionEnd(), s.cursor.selectedText())
            for s in text_view.extraSelections()]


@pytest.mark.parametrize(("kind", "text", "word"), CASES, ids=IDS)
def test_ner_stores_the_word_selected(qtbot, tmp_path, make_project, kind, text, word):
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER", "LOC"),
                           [{"text": text}])
    view = _view(qtbot, project, SpansEditor)
    text_view = view.editor.text_view
    _select_visible(text_view, word)
    qtbot.keyClick(text_view, Qt.Key.Key_2)
    qtbot.keyClick(text_view, Qt.Key.Key_Return)
    assert view.wait_for_saves()  # decisions are written on the save thread
    [span] = project.annotation(1).payload["spans"]
    assert text[span["start"]:span["end"]] == word
    assert span["start"] == text.index(word)
    project.close()


@pytest.mark.parametrize(("kind", "text", "word"), CASES, ids=IDS)
def test_ner_paints_a_stored_span_on_the_word(qtbot, tmp_path, make_project, kind, text, word):
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER", "LOC"),
                           [{"text": text}])
    start = text.index(word)
    project.save_predictions("bundle", [(1, {"spans": [
        {"start": start, "end": start + len(word), "label": "LOC", "score": 0.9}]}, 0.9)])
    view = _view(qtbot, project, SpansEditor)
    text_view = view.editor.text_view
    found = _find(text_view, word)
    assert _painted(text_view) == [(found.selectionStart(), found.selectionEnd(), word)]
    project.close()


@pytest.mark.parametrize(("kind", "text", "word"), CASES, ids=IDS)
def test_qa_stores_the_answer_selected(qtbot, tmp_path, make_project, kind, text, word):
    project = make_project(tmp_path / "qa.annotune", "question-answering", (),
                           [{"context": text, "question": "Which?"}])
    view = _view(qtbot, project, AnswersEditor)
    context = view.editor.context
    _select_visible(context, word)
    qtbot.keyClick(context, Qt.Key.Key_A)
    assert view.wait_for_saves()  # decisions are written on the save thread
    [answer] = project.annotation(1).payload["answers"]
    assert answer == {"start": text.index(word), "text": word}
    assert text[answer["start"]:answer["start"] + len(answer["text"])] == word
    project.close()


@pytest.mark.parametrize(("kind", "text", "word"), CASES, ids=IDS)
def test_qa_paints_a_saved_answer_on_the_word(qtbot, tmp_path, make_project, kind, text, word):
    project = make_project(tmp_path / "qa.annotune", "question-answering", (),
                           [{"context": text, "question": "Which?"},
                            {"context": "Other text.", "question": "What?"}])
    project.save_annotation(1, {"answers": [{"start": text.index(word), "text": word}]})
    view = _view(qtbot, project, AnswersEditor)
    view.open_example(1)
    context = view.editor.context
    found = _find(context, word)
    assert _painted(context) == [(found.selectionStart(), found.selectionEnd(), word)]
    project.close()


@pytest.mark.parametrize("editor_class", [SpansEditor, AnswersEditor])
def test_a_rough_selection_snaps_to_whole_words_and_characters(qtbot, tmp_path, make_project,
                                                               editor_class):
    """Part of José (without its accent) or of the ZWJ family grows to the whole of it."""
    text = f"I 🍕 met {JOSE} and his {FAMILY} in Paris"
    if editor_class is SpansEditor:
        project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER",),
                               [{"text": text}])
    else:
        project = make_project(tmp_path / "qa.annotune", "question-answering", (),
                               [{"context": text, "question": "Who?"},
                                {"context": text, "question": "Whose family?"}])
    view = _view(qtbot, project, editor_class)
    text_view = getattr(view.editor, "text_view", None) or view.editor.context
    key = Qt.Key.Key_1 if editor_class is SpansEditor else Qt.Key.Key_A
    chosen = []
    for rough, whole in (("Jos", JOSE), (FAMILY[:2], FAMILY)):
        cursor = _find(text_view, "Jos" if rough == "Jos" else FAMILY)
        if rough != "Jos":  # the first emoji of the family only: inside the cluster
            cursor.setPosition(cursor.selectionStart())
            cursor.setPosition(cursor.position() + 2, QTextCursor.MoveMode.KeepAnchor)
        text_view.setFocus()
        text_view.setTextCursor(cursor)
        qtbot.keyClick(text_view, key)
        chosen.append(whole)
    if editor_class is SpansEditor:
        qtbot.keyClick(text_view, Qt.Key.Key_Return)
        assert view.wait_for_saves()  # decisions are written on the save thread
        stored = [text[s["start"]:s["end"]] for s in project.annotation(1).payload["spans"]]
    else:
        assert view.wait_for_saves()  # decisions are written on the save thread
        stored = [project.annotation(i).payload["answers"][0]["text"] for i in (1, 2)]
    assert stored == chosen
    project.close()


def test_mouse_drag_over_emoji_text_snaps_and_stores_the_word(qtbot, tmp_path, make_project):
    text = f"🍕🍕 {FAMILY}\r\nCharles Babbage"
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER",),
                           [{"text": text}])
    view = _view(qtbot, project, SpansEditor)
    text_view = view.editor.text_view
    found = _find(text_view, "Charles Babbage")

    def point(position):
        cursor = QTextCursor(text_view.document())
        cursor.setPosition(position)
        return text_view.cursorRect(cursor).center()

    inside_charles, inside_babbage = found.selectionStart() + 2, found.selectionEnd() - 3
    qtbot.mousePress(text_view.viewport(), Qt.MouseButton.LeftButton, pos=point(inside_charles))
    qtbot.mouseMove(text_view.viewport(), pos=point(inside_babbage))
    qtbot.mouseRelease(text_view.viewport(), Qt.MouseButton.LeftButton,
                       pos=point(inside_babbage))
    assert text_view.textCursor().selectedText() == "Charles Babbage"  # snapped on screen
    start, end = text_view.selection()
    assert text[start:end] == "Charles Babbage"
    qtbot.keyClick(text_view, Qt.Key.Key_1)
    assert view.editor.spans == [{"start": start, "end": end, "label": "PER"}]
    project.close()


def test_clicking_an_entity_after_emoji_selects_it(qtbot, tmp_path, make_project):
    text = "🍕🍕🍕 Rome and Paris"
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("LOC",),
                           [{"text": text}])
    view = _view(qtbot, project, SpansEditor)
    editor, text_view = view.editor, view.editor.text_view
    messages = []
    view.message.connect(messages.append)
    for word in ("Rome", "Paris"):
        _select_visible(text_view, word)
        qtbot.keyClick(text_view, Qt.Key.Key_1)
    assert [text[s["start"]:s["end"]] for s in editor.spans] == ["Rome", "Paris"]
    cursor = QTextCursor(text_view.document())
    cursor.setPosition(_find(text_view, "Paris").selectionStart() + 1)
    qtbot.mouseClick(text_view.viewport(), Qt.MouseButton.LeftButton,
                     pos=text_view.cursorRect(cursor).center())
    assert editor.selected == 1
    assert messages[-1] == "Entity LOC: 'Paris' — Del removes it"
    project.close()


def test_accepting_does_not_announce_an_entity_of_the_example_before(qtbot, tmp_path,
                                                                     make_project):
    """Showing the next example put its cursor inside a span of the one just saved."""
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER",),
                           [{"text": "Ada Lovelace met Charles Babbage."},
                            {"text": "Nothing here at all."}])
    view = _view(qtbot, project, SpansEditor)
    text_view = view.editor.text_view
    messages = []
    view.message.connect(messages.append)
    _select_visible(text_view, "Ada Lovelace")
    qtbot.keyClick(text_view, Qt.Key.Key_1)
    qtbot.keyClick(text_view, Qt.Key.Key_Return)
    assert view.wait_for_saves()  # "Saved" is said once the save thread has written it
    assert view.current.id == 2
    assert messages[-1] == "Saved example #1"
    assert not any(m.startswith("Entity") for m in messages)
    assert view.editor.selected is None
    project.close()


def test_qa_a_selection_of_only_spaces_saves_nothing(qtbot, tmp_path, make_project):
    context = "The tower was finished in 1889\r\n\r\nin Paris."
    project = make_project(tmp_path / "qa.annotune", "question-answering", (),
                           [{"context": context, "question": "When?"}])
    view = _view(qtbot, project, AnswersEditor)
    messages = []
    view.message.connect(messages.append)
    text_view = view.editor.context
    cursor = _find(text_view, "1889")
    cursor.setPosition(cursor.selectionEnd())
    cursor.setPosition(cursor.position() + 2, QTextCursor.MoveMode.KeepAnchor)  # two breaks
    text_view.setFocus()
    text_view.setTextCursor(cursor)
    qtbot.keyClick(text_view, Qt.Key.Key_A)
    assert view.wait_for_saves()  # decisions are written on the save thread
    assert project.annotation(1) is None
    assert messages[-1].startswith("Select the answer in the context first")
    project.close()


def test_qa_a_question_starting_with_a_byte_order_mark_is_not_edited(qtbot, tmp_path,
                                                                     make_project):
    question = "\ufeffWhen was it finished?"
    project = make_project(tmp_path / "qa.annotune", "question-answering", (),
                           [{"context": "It was finished in 1889.", "question": question}])
    view = _view(qtbot, project, AnswersEditor)
    assert view.editor.question.text() == question
    assert view.editor.edited_fields() is None
    _select_visible(view.editor.context, "1889")
    qtbot.keyClick(view.editor.context, Qt.Key.Key_A)
    assert project.example(1).fields["question"] == question
    project.close()
