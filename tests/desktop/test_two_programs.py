"""The labeling window and another program on one project: no label replaced or taken back
without the window saying so."""

from __future__ import annotations

import subprocess
import sys

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QApplication

from annotune.core.plugins import registry
from annotune.core.store import Project
from annotune.desktop.editors.label_editor import LabelEditor
from annotune.desktop.labeling import LabelingView
from annotune.desktop.main_window import MainWindow


def _view(qtbot, project) -> tuple[LabelingView, list[str]]:
    task = registry().task(project.task_name)
    view = LabelingView(project, task, LabelEditor(task, project.settings))
    qtbot.addWidget(view)
    qtbot.show_active(view)
    messages: list[str] = []
    view.message.connect(messages.append)
    view.start()
    return view, messages


def _other_program_labels(path, example_id: int, label: str) -> None:
    with Project.open(path) as other:
        other.save_annotation(example_id, {"label": label}, annotator="script 👨‍👩‍👧")


def _label_of(path, example_id: int) -> str | None:
    with Project.open(path) as fresh:
        stored = fresh.annotation(example_id)
        return stored.payload.get("label") if stored is not None else None


def test_a_decision_over_another_programs_label_says_so_and_keeps_it_in_the_history(
        qtbot, sentiment_project):
    view, messages = _view(qtbot, sentiment_project)
    shown = view.current.id  # shown unlabeled ...
    _other_program_labels(sentiment_project.path, shown, "neg")  # ... labeled elsewhere meanwhile
    qtbot.keyClick(view.editor, Qt.Key.Key_2)  # the person labels what they see: pos
    assert view.wait_for_saves()

    assert _label_of(sentiment_project.path, shown) == "pos"  # last writer wins ...
    assert [c.example_id for c in view.changed_elsewhere] == [shown]  # ... never silently
    notice = next(m for m in messages if "another program" in m)
    assert f"#{shown}" in notice and "“neg”" in notice and "Ctrl+Z" in notice
    qtbot.keyClick(view.editor, Qt.Key.Key_1)  # the next save's "Saved" does not hide it
    assert view.wait_for_saves()
    assert view.elsewhere_note.isVisible() and f"#{shown}" in view.elsewhere_note.text()
    history = sentiment_project.history(shown)
    assert [entry["new"]["label"] for entry in history] == ["pos", "neg"]


def test_a_decision_on_an_example_no_one_else_touched_says_nothing_more(qtbot, sentiment_project):
    view, messages = _view(qtbot, sentiment_project)
    first = view.current.id
    _other_program_labels(sentiment_project.path, first + 3, "neg")  # another example
    qtbot.keyClick(view.editor, Qt.Key.Key_1)
    qtbot.keyClick(view.editor, Qt.Key.Key_S)
    assert view.wait_for_saves()
    assert view.changed_elsewhere == []
    assert not any("another program" in m for m in messages)
    assert not view.elsewhere_note.isVisible()


def test_a_skip_over_another_programs_label_says_so(qtbot, sentiment_project):
    view, messages = _view(qtbot, sentiment_project)
    shown = view.current.id
    _other_program_labels(sentiment_project.path, shown, "pos")
    qtbot.keyClick(view.editor, Qt.Key.Key_S)
    assert view.wait_for_saves()
    assert [c.example_id for c in view.changed_elsewhere] == [shown]
    assert any("another program" in m and "labeled “pos”" in m for m in messages)


def test_undo_never_takes_back_another_programs_later_change(qtbot, sentiment_project):
    view, messages = _view(qtbot, sentiment_project)
    first = view.current.id
    qtbot.keyClick(view.editor, Qt.Key.Key_2)  # pos, saved by the window
    assert view.wait_for_saves()
    _other_program_labels(sentiment_project.path, first, "neg")  # corrected by a script

    view.undo()
    assert view.wait_for_saves()
    # the script's label stands: undo did not bring back the window's "pos" over it
    assert _label_of(sentiment_project.path, first) == "neg"
    assert any(m.startswith("Nothing undone: another program") and f"#{first}" in m
               for m in messages)


def test_undo_never_reaches_past_another_programs_change_on_another_example(
        qtbot, sentiment_project):
    view, messages = _view(qtbot, sentiment_project)
    first = view.current.id
    qtbot.keyClick(view.editor, Qt.Key.Key_2)
    assert view.wait_for_saves()
    _other_program_labels(sentiment_project.path, first + 4, "neg")

    view.undo()
    assert view.wait_for_saves()
    assert _label_of(sentiment_project.path, first + 4) == "neg"
    assert _label_of(sentiment_project.path, first) == "pos"
    assert any("Nothing undone" in m for m in messages)


def test_undo_and_redo_of_the_windows_own_decisions_still_work(qtbot, sentiment_project):
    sentiment_project.save_annotation(1, {"label": "neg"})  # before the window opened
    view, messages = _view(qtbot, sentiment_project)
    shown = view.current.id
    qtbot.keyClick(view.editor, Qt.Key.Key_2)
    assert view.wait_for_saves()
    view.undo()
    assert view.wait_for_saves()
    assert _label_of(sentiment_project.path, shown) is None
    view.redo()
    assert view.wait_for_saves()
    assert _label_of(sentiment_project.path, shown) == "pos"
    view.undo()
    view.undo()  # the label given before the window opened is undone as before
    assert view.wait_for_saves()
    assert _label_of(sentiment_project.path, 1) is None
    assert not any("another program" in m for m in messages)


def _window(qtbot, path) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    qtbot.show_active(window)
    assert window.open_project(path)
    return window


def _back_to_the_window(window: MainWindow) -> None:
    """The person comes back to the window from the terminal where the other program ran."""
    assert window.isActiveWindow()
    QApplication.sendEvent(window, QEvent(QEvent.Type.ActivationChange))


def test_a_label_another_program_added_gets_its_key_when_the_window_is_back(
        qtbot, sentiment_project):
    path = sentiment_project.path
    sentiment_project.close()
    window = _window(qtbot, path)
    with Project.open(path) as other:
        other.add_labels(["meh 🍕"])
    _back_to_the_window(window)

    assert "meh 🍕" in window.statusBar().currentMessage()
    labeling = window.views["label"]
    first = labeling.current.id
    assert "meh 🍕" in labeling.editor.buttons
    qtbot.keyClick(labeling.editor, Qt.Key.Key_3)
    assert labeling.wait_for_saves()
    assert _label_of(path, first) == "meh 🍕"


def test_examples_another_program_imported_show_up_when_the_window_is_back(
        qtbot, sentiment_project, tmp_path):
    path = sentiment_project.path
    for example in sentiment_project.examples():
        sentiment_project.save_annotation(example.id, {"label": "pos"})
    sentiment_project.close()
    window = _window(qtbot, path)
    labeling = window.views["label"]
    assert labeling.current is None  # every example labeled: nothing left to show
    more = tmp_path / "more.csv"
    more.write_bytes("text\r\nJose\u0301 liked it 👨‍👩‍👧\r\nمراجعة جيدة\r\n好评\r\n"
                     .encode())
    subprocess.run([sys.executable, "-m", "annotune.core.cli", "import", str(path), str(more)],
                   check=True, capture_output=True)
    _back_to_the_window(window)

    assert window.counts["total"] == 9 and window.counts["accepted"] == 6
    assert labeling.current is not None
    assert labeling.current.fields["text"] == "Jose\u0301 liked it 👨‍👩‍👧"
    qtbot.keyClick(labeling.editor, Qt.Key.Key_1)
    assert labeling.wait_for_saves()
    assert _label_of(path, labeling.history[0]) == "neg"


def test_the_shown_example_labeled_by_another_program_shows_as_labeled_when_back(
        qtbot, sentiment_project):
    path = sentiment_project.path
    sentiment_project.close()
    window = _window(qtbot, path)
    labeling = window.views["label"]
    shown = labeling.current.id
    _other_program_labels(path, shown, "neg")
    _back_to_the_window(window)

    assert labeling.current.id == shown
    assert "labeled" in labeling.header.text() and "unlabeled" not in labeling.header.text()
    assert labeling.editor.buttons["neg"].isChecked()
    assert window.counts["accepted"] == 1


def test_two_windows_on_one_project_neither_replaces_nor_undoes_the_other_silently(
        qtbot, sentiment_project):
    second_connection = Project.open(sentiment_project.path)
    try:
        one, one_says = _view(qtbot, sentiment_project)
        two, two_says = _view(qtbot, second_connection)
        shown = one.current.id
        assert two.current.id == shown  # both show the same unlabeled example
        one.editor.press("pos")  # in the first window
        assert one.wait_for_saves()
        two.editor.press("neg")  # in the second, over it
        assert two.wait_for_saves()
        assert [c.example_id for c in two.changed_elsewhere] == [shown]
        assert one.changed_elsewhere == []

        one.undo()  # would bring back "pos" over the second window's "neg"
        assert one.wait_for_saves()
        assert _label_of(sentiment_project.path, shown) == "neg"
        assert any(m.startswith("Nothing undone") for m in one_says)
        two.undo()  # the second window's own decision: undone, back to the first's
        assert two.wait_for_saves()
        assert _label_of(sentiment_project.path, shown) == "pos"
        two.close_saves()
        one.close_saves()
    finally:
        second_connection.close()


def test_the_examples_table_shows_a_label_changed_elsewhere_when_the_window_is_back(
        qtbot, sentiment_project):
    path = sentiment_project.path
    sentiment_project.save_annotation(2, {"label": "pos"})
    sentiment_project.close()
    window = _window(qtbot, path)
    window.tabs.setCurrentWidget(window.views["examples"])
    _back_to_the_window(window)
    table = window.views["examples"].model

    def label_cell(example_id: int) -> str:
        row = next(r for r in range(table.total)
                   if table.data(table.index(r, 0)) == example_id)
        return table.data(table.index(row, 2))

    assert label_cell(2) == "pos"
    _other_program_labels(path, 2, "neg")  # a relabel: every count stays the same
    _back_to_the_window(window)
    assert label_cell(2) == "neg"


def test_labels_added_elsewhere_never_end_a_pre_annotation_the_window_runs(
        qtbot, sentiment_project):
    path = sentiment_project.path
    sentiment_project.close()
    window = _window(qtbot, path)
    views = dict(window.views)
    views["try"].preannotating = True  # as while its worker stores predictions
    with Project.open(path) as other:
        other.add_labels(["meh"])
    _back_to_the_window(window)
    assert window.views == views  # nothing built again, nothing stopped
    assert "'meh'" in window.statusBar().currentMessage()
    assert "pre-annotation" in window.statusBar().currentMessage()
    views["try"].preannotating = False
    _back_to_the_window(window)  # once it has finished
    assert "meh" in window.views["label"].editor.buttons


def test_undo_takes_back_a_suggestion_accepted_in_this_windows_examples_tab(
        qtbot, sentiment_project):
    path = sentiment_project.path
    sentiment_project.save_annotation(2, {"label": "neg"})
    check_id = sentiment_project.start_label_check({"folds": 2})
    sentiment_project.finish_label_check(check_id, "finished", [
        (2, 0.97, {"label": "neg"}, {"label": "pos"}, [])])
    sentiment_project.close()
    window = _window(qtbot, path)
    browser = window.views["examples"]
    browser.show_suspects()
    with qtbot.waitSignal(browser.reviewed):
        qtbot.keyClick(browser.table, Qt.Key.Key_A)
    assert _label_of(path, 2) == "pos"
    window.undo()
    assert window.views["label"].wait_for_saves()
    assert _label_of(path, 2) == "neg"
