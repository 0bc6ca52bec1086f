"""The Examples tab's "Suspect labels" view: a label check's suspects, reviewed by keyboard."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from annotune.core.plugins import registry
from annotune.desktop.browser import NO_CHECK, BrowserView

TEXTS = ["🍕 was great", "👨\u200d👩\u200d👧 hated it", "東京 は 素晴らしい", "رائع جدا",
         "Jose\u0301 liked it", "plain words"]


@pytest.fixture
def checked(tmp_path, make_project):
    project = make_project(tmp_path / "suspects.annotune", "text-classification",
                           ("pos", "neg"), [{"text": t} for t in TEXTS])
    for example_id in range(1, 7):
        project.save_annotation(example_id, {"label": "pos" if example_id % 2 else "neg"})
    check_id = project.start_label_check({"folds": 2})
    project.finish_label_check(check_id, "finished", [
        (1, 0.10, {"label": "pos"}, None, []),  # agreed with: not a suspect
        (2, 0.97, {"label": "neg"}, {"label": "pos"},
         [{"kind": "label", "given": "neg", "suggested": "pos", "score": 0.97}]),
        (3, 0.55, {"label": "pos"}, {"label": "neg"}, []),
        (4, 0.80, {"label": "neg"}, {"label": "pos"}, []),
    ])
    project.check_id = check_id
    yield project
    project.close()


def _browser(qtbot, project):
    view = BrowserView(project, registry().task(project.task_name))
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    qtbot.waitExposed(view)
    view.refresh()
    return view


def _cells(view, column):
    return [view.model.data(view.model.index(row, column)) for row in range(view.model.total)]


def test_suspects_are_listed_most_suspect_first_with_given_and_suggested(qtbot, checked):
    view = _browser(qtbot, checked)
    assert not view.review.isVisible()
    view.show_suspects()
    assert view.review.isVisible()
    assert _cells(view, 0) == [2, 4, 3]
    assert _cells(view, 2) == ["neg", "neg", "pos"]  # the given label
    assert _cells(view, 5) == ["pos (0.97)", "pos (0.80)", "neg (0.55)"]
    assert _cells(view, 3) == ["To review"] * 3
    assert "label neg → pos (0.97)" in view.model.data(view.model.index(0, 5),
                                                        Qt.ItemDataRole.ToolTipRole)
    assert view.table.currentIndex().row() == 0 and view.focusWidget() is view.table


def test_a_accepts_the_suggestion_through_the_store_and_undo_restores_it(qtbot, checked):
    view = _browser(qtbot, checked)
    view.show_suspects()
    with qtbot.waitSignal(view.reviewed):
        qtbot.keyClick(view.table, Qt.Key.Key_A)
    assert checked.annotation(2).payload == {"label": "pos"}
    assert checked.history(2)[0]["action"] == "save"
    assert _cells(view, 3)[0] == "Changed"
    assert view.table.currentIndex().row() == 1  # on to the next suspect
    checked.undo()
    view.refresh()
    assert checked.annotation(2).payload == {"label": "neg"}
    assert _cells(view, 3)[0] == "To review"


def test_a_never_replaces_a_label_another_program_changed_after_the_list_was_shown(
        qtbot, checked):
    from annotune.core.store import Project

    view = _browser(qtbot, checked)
    view.show_suspects()  # example 2: given neg, suggested pos
    with Project.open(checked.path) as other:  # a script relabels it meanwhile
        other.save_annotation(2, {"label": "pos"}, annotator="script")
        other.skip(2)
    qtbot.keyClick(view.table, Qt.Key.Key_A)
    assert checked.annotation(2).status == "skipped"  # the script's decision stands
    assert "example #2 was changed" in view.shown.text()
    assert view.table.currentIndex().row() == 0  # still on it, shown as it is now
    assert _cells(view, 3)[0] == "Changed"
    with qtbot.waitSignal(view.reviewed):  # seen now: A replaces it on purpose
        qtbot.keyClick(view.table, Qt.Key.Key_A)
    assert checked.annotation(2).payload == {"label": "pos"}
    assert checked.annotation(2).status == "accepted"


def test_k_keeps_the_given_label(qtbot, checked):
    view = _browser(qtbot, checked)
    view.show_suspects()
    view.table.selectRow(1)
    with qtbot.waitSignal(view.reviewed):
        qtbot.keyClick(view.table, Qt.Key.Key_K)
    assert checked.annotation(4).payload == {"label": "neg"}
    assert _cells(view, 3) == ["To review", "Kept", "To review"]


def test_search_narrows_the_suspects(qtbot, checked):
    view = _browser(qtbot, checked)
    view.show_suspects()
    view.search.setText("東京")
    view.apply()
    assert _cells(view, 0) == [3]


def test_enter_opens_the_suspect_in_the_editor(qtbot, checked):
    view = _browser(qtbot, checked)
    view.show_suspects()
    with qtbot.waitSignal(view.openExample) as opened:
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert opened.args == [2]


def test_without_a_check_the_view_says_how_to_run_one(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "none.annotune", "text-classification", ("a", "b"),
                           [{"text": "x"}])
    view = _browser(qtbot, project)
    view.show_suspects()
    assert view.model.total == 0 and view.empty.text() == NO_CHECK
    project.close()


def test_the_review_keys_help_names_the_keys_the_table_answers(qtbot, checked):
    view = _browser(qtbot, checked)
    view.show_suspects()
    named = dict(view.key_help())
    assert {"A", "K", "Enter"} <= set(named)
    with qtbot.waitSignal(view.reviewed):
        qtbot.keyClick(view.table, Qt.Key.Key_K)  # a key the help names does what it says
    assert checked.label_issues(checked.check_id)[0]["kept"]
