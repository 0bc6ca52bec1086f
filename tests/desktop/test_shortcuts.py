"""Keyboard first: every menu action has a key, and the Help ▸ Keyboard shortcuts sheet is
read from the window's own actions and shortcuts, so it lists every key there is."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QAction, QShortcut
from PySide6.QtWidgets import QMenuBar

from annotune.desktop.main_window import MainWindow
from annotune.desktop.shortcuts import (
    ShortcutsSheet,
    collect,
    covered_keys,
    expand_keys,
    menu_actions,
    menu_entries,
    mnemonic,
)


def _window(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    qtbot.show_active(window)
    return window


def unreachable(bar: QMenuBar) -> list[str]:
    """Return the menu actions a keyboard cannot reach: no shortcut and no Alt path."""
    reachable = {entry.description for entry in menu_entries(bar)
                 if entry.keys or entry.menu_keys}
    return [action.text() for action in menu_actions(bar)
            if action.isVisible() and action.text().replace("&", "").rstrip("…") not in reachable]


def test_every_menu_action_has_a_shortcut_or_a_menu_key(qtbot):
    window = _window(qtbot)
    assert menu_actions(window.menuBar())  # the menus are there to check
    assert unreachable(window.menuBar()) == []


def test_menu_letters_are_unique_within_each_menu(qtbot):
    window = _window(qtbot)
    bar = window.menuBar()
    tops = [mnemonic(a.text()) for a in bar.actions()]
    assert len(tops) == len(set(tops)) and "" not in tops
    for top in bar.actions():
        letters = [mnemonic(a.text()) for a in top.menu().actions() if not a.isSeparator()]
        assert len(letters) == len(set(letters)), (top.text(), letters)


def test_the_checker_sees_an_action_no_key_reaches(qtbot):
    window = _window(qtbot)
    stray = QAction("Frobnicate", window)  # no '&', no shortcut
    window.menuBar().actions()[0].menu().addAction(stray)
    assert unreachable(window.menuBar()) == ["Frobnicate"]


@pytest.mark.parametrize(("task", "labels"), [("text-classification", ("neg", "pos")),
                                              ("token-classification", ("PER", "LOC")),
                                              ("question-answering", ())])
def test_the_sheet_lists_every_key_of_the_open_window(qtbot, tmp_path, make_project, task,
                                                      labels):
    project = make_project(tmp_path / "p.annotune", task, labels,
                           [{"context": "Ada lived in 🍕 town.", "question": "Where?"}]
                           if task == "question-answering" else [{"text": "Ada in Oslo"}],
                           allow_unanswerable=task == "question-answering")
    window = _window(qtbot)
    window.set_project(project)
    entries = collect(window)
    listed = covered_keys(entries)
    keys = {s.key().toString() for s in window.findChildren(QShortcut) if not s.key().isEmpty()}
    keys |= {a.shortcut().toString() for a in menu_actions(window.menuBar())
             if not a.shortcut().isEmpty()}
    assert keys - listed == set()
    sections = {entry.section for entry in entries}
    assert {"File", "Edit", "Model", "Help", "Labeling"} <= sections
    assert not [e for e in entries if e.section == "Other keys"], \
        "every key has a description from the menus, the editor or the buttons"
    window.close_project(ask=False)


def test_help_menu_opens_the_sheet(qtbot, sentiment_project):
    window = _window(qtbot)
    window.set_project(sentiment_project)
    window.shortcuts_action.trigger()
    sheet = window.shortcuts_sheet
    assert isinstance(sheet, ShortcutsSheet) and sheet.isVisible()
    text = sheet.text()
    assert "File: New project — Ctrl+N" in text
    assert "Labeling: Skip this example — S" in text
    assert "Help: Keyboard shortcuts — F1" in text
    assert "File: Import — Ctrl+I" in text
    assert "File: Export data — Alt+F, E" in text  # no shortcut: its menu keys
    window.close_project(ask=False)


def test_the_sheet_lists_the_suspect_label_review_keys(qtbot, sentiment_project):
    window = _window(qtbot)
    window.set_project(sentiment_project)
    window.shortcuts_action.trigger()
    text = window.shortcuts_sheet.text()
    assert "Suspect labels: Accept the suggested annotation — A" in text
    assert "Suspect labels: Keep the given annotation (mark it reviewed) — K" in text
    assert "Suspect labels: Open the example in the editor — Enter" in text
    window.close_project(ask=False)


def test_key_texts_expand_to_single_keys():
    assert expand_keys("1–3") == {"1", "2", "3"}
    assert expand_keys("A / Enter") == {"A", "Enter", "Return"}
    assert expand_keys("PgUp/PgDn") == {"PgUp", "PgDown"}
    assert expand_keys("Shift+←/→") == {"Shift+Left", "Right"}


def test_keys_of_a_closed_project_are_not_listed(qtbot, tmp_path, make_project):
    window = _window(qtbot)
    three = make_project(tmp_path / "nli.annotune", "pair-classification",
                         ("entailment", "neutral", "contradiction"),
                         [{"text": "A man sleeps.", "text_pair": "Nobody sleeps."}])
    two = make_project(tmp_path / "two.annotune", "text-classification", ("neg", "pos"),
                       [{"text": "fine"}])
    window.set_project(three)
    window.set_project(two)  # the first project's editor waits for deletion meanwhile
    entries = collect(window)
    assert [e for e in entries if e.section == "Other keys"] == []
    assert "3" not in covered_keys(entries)
    window.close_project(ask=False)
