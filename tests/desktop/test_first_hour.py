"""A newcomer's first hour: the keys the app documents work, empty views say what to do next."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QDialogButtonBox, QLabel

from annotune.core import cli
from annotune.core.plugins import registry
from annotune.desktop.browser import NOTHING_MATCHES
from annotune.desktop.chart import LineChart, nice_ticks
from annotune.desktop.import_dialog import ImportDialog
from annotune.desktop.labeling import ALL_DONE, NO_EXAMPLES, NO_SUGGESTIONS_NOTE
from annotune.desktop.main_window import MainWindow
from annotune.desktop.shortcuts import collect, mnemonic
from annotune.desktop.start_screen import NewProjectDialog

CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
# a review of every kind of text people paste: emoji, a ZWJ family, a combining accent, CJK,
# Arabic, Hebrew and a line break inside a quoted field (CRLF)
TEXTS = ["pizza 🍕 was great", "our family 👨‍👩‍👧 hated it", "Jose\u0301 liked it",
         "这个产品很好", "المنتج رائع جدا", "השירות היה נורא", "line one\r\nline two"]


def _window(qtbot, path=None) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    qtbot.show_active(window)
    if path is not None:
        assert window.open_project(path)
    return window


def _opened(qtbot, tmp_path, make_project, rows) -> MainWindow:
    project = make_project(tmp_path / "reviews.annotune", "text-classification",
                           ("negative", "positive"), rows)
    path = project.path
    project.close()
    return _window(qtbot, path)


def test_ctrl_tab_changes_tabs_even_from_the_examples_table(qtbot, tmp_path, make_project):
    window = _opened(qtbot, tmp_path, make_project, [{"text": t} for t in TEXTS])
    browser = window.views["examples"]
    window.tabs.setCurrentWidget(browser)
    browser.table.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is browser.table)
    qtbot.keyClick(browser.table, Qt.Key.Key_Tab, CTRL)
    assert window.tabs.currentWidget() is window.views["train"]
    window.tabs.setCurrentWidget(browser)
    browser.table.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is browser.table)
    # X11 sends Ctrl+Shift+Tab as Backtab with both modifiers
    qtbot.keyClick(browser.table, Qt.Key.Key_Backtab, CTRL_SHIFT)
    assert window.tabs.currentWidget() is window.views["label"]
    # from the labeling view too, and around the end
    qtbot.keyClick(window.views["label"].editor, Qt.Key.Key_Backtab, CTRL_SHIFT)
    assert window.tabs.currentWidget() is window.views["try"]
    # the sheet names each tab key once, under "Anywhere"
    entries = [(e.section, e.keys) for e in collect(window) if "Tab" in e.keys]
    assert sorted(entries) == [("Anywhere", "Ctrl+Shift+Tab"), ("Anywhere", "Ctrl+Tab")]


def test_an_empty_project_says_to_import_not_that_all_is_labeled(qtbot, tmp_path,
                                                                   make_project):
    window = _opened(qtbot, tmp_path, make_project, [])
    labeling = window.views["label"]
    assert labeling.stack.currentWidget() is labeling.done_label
    assert labeling.done_label.text() == NO_EXAMPLES
    assert "Import" in NO_EXAMPLES and "Ctrl+I" in NO_EXAMPLES
    assert window.import_action.shortcut().toString() == "Ctrl+I"
    assert "Ctrl+I" in window.counts_label.text()


def test_a_fully_labeled_project_says_every_example_is_done(qtbot, tmp_path, make_project):
    window = _opened(qtbot, tmp_path, make_project, [{"text": t} for t in TEXTS[:2]])
    labeling = window.views["label"]
    for _ in range(2):
        qtbot.keyClick(labeling.editor, Qt.Key.Key_2)
    assert labeling.wait_for_saves()
    assert labeling.stack.currentWidget() is labeling.done_label
    assert labeling.done_label.text() == ALL_DONE
    assert window.project.count(status="accepted") == 2


def test_menu_tips_show_no_mnemonic_ampersand(qtbot):
    window = _window(qtbot)
    actions = [action for menu in window.menuBar().actions() if menu.menu()
               for action in menu.menu().actions() if not action.isSeparator()]
    assert len(actions) > 10
    for action in actions:
        assert "&" not in action.toolTip(), action.text()
        assert "&" not in action.statusTip(), action.text()
    assert window.new_action.statusTip() == "New project (Ctrl+N)"


def test_ctrl_f_from_the_label_tab_searches_the_examples(qtbot, tmp_path, make_project):
    window = _opened(qtbot, tmp_path, make_project, [{"text": t} for t in TEXTS])
    browser = window.views["examples"]
    browser.search.setText("old words")
    qtbot.keyClick(window.views["label"].editor, Qt.Key.Key_F, CTRL)
    assert window.tabs.currentWidget() is browser
    qtbot.waitUntil(lambda: QApplication.focusWidget() is browser.search)
    assert browser.search.selectedText() == "old words"  # typing replaces the last search
    assert ("Edit", "Find examples", "Ctrl+F") in [(e.section, e.description, e.keys)
                                                   for e in collect(window)]


def test_an_unclosed_quote_on_line_7_is_refused_naming_the_line(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "p.annotune", "text-classification",
                           ("negative", "positive"))
    data = tmp_path / "more.csv"
    lines = ["review,label", *(f'"{text}",positive' for text in TEXTS[:5]),
             '"an unclosed quote,negative', '"השירות היה נורא",negative',
             '"line one\r\nline two",positive', "last one,negative"]
    data.write_bytes("\r\n".join(lines).encode("utf-8") + b"\r\n")
    dialog = ImportDialog(project, registry().task(project.task_name), path=data)
    qtbot.addWidget(dialog)
    dialog.show()
    # read as it stands, line 7 would swallow line 8 into one labeled example
    assert "1 bad row" in dialog.summary.text()
    listed = [dialog.problems.item(i).text() for i in range(dialog.problems.count())]
    assert len(listed) == 1
    assert f"{data}:7" in listed[0] and "quote" in listed[0], listed
    assert not dialog.import_button.isEnabled()
    dialog.run_import()
    assert dialog.wait_for_import()
    assert project.count() == 0  # nothing half-written
    project.close()


def test_a_quoted_line_break_still_imports_as_one_example(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "p.annotune", "text-classification",
                           ("negative", "positive"))
    data = tmp_path / "good.csv"
    rows = [f'"{text}",positive' for text in TEXTS]
    data.write_bytes("\r\n".join(["review,label", *rows]).encode("utf-8") + b"\r\n")
    dialog = ImportDialog(project, registry().task(project.task_name), path=data)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.import_button.isEnabled(), dialog.summary.text()
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert dialog.wait_for_import()
    stored = sorted(example.fields["text"] for example in project.examples(limit=20))
    assert stored == sorted(TEXTS)
    project.close()


def test_showing_try_it_puts_the_cursor_in_its_text_box(qtbot, tmp_path, make_project):
    window = _opened(qtbot, tmp_path, make_project, [{"text": t} for t in TEXTS])
    tryit = window.views["try"]
    qtbot.keyClick(window.views["label"].editor, Qt.Key.Key_Backtab, CTRL_SHIFT)
    assert window.tabs.currentWidget() is tryit
    text_box = next(iter(tryit.inputs.values()))
    qtbot.waitUntil(lambda: QApplication.focusWidget() is text_box)
    qtbot.keyClicks(text_box, "pizza")
    assert text_box.toPlainText() == "pizza"
    qtbot.keyClick(text_box, Qt.Key.Key_Tab, CTRL)  # a text box keeps no tab key either
    assert window.tabs.currentWidget() is window.views["label"]


def test_the_new_project_error_shows_whole_above_the_buttons(qtbot, tmp_path):
    taken = tmp_path / "a folder with a long name, as people's folders have" / "reviews.annotune"
    taken.parent.mkdir()
    taken.write_bytes(b"")
    dialog = NewProjectDialog(registry())
    qtbot.addWidget(dialog)
    qtbot.show_active(dialog)
    dialog.labels.setText("negative, positive")
    dialog.path.setText(str(taken))
    before = dialog.height()
    qtbot.keyClick(dialog.path, Qt.Key.Key_Return)
    assert dialog.isVisible()  # refused: the file is there
    error = dialog.error
    assert "a file with this name exists" in error.text()
    qtbot.waitUntil(lambda: error.height() >= error.heightForWidth(error.width()))
    assert dialog.height() > before
    buttons = dialog.findChild(QDialogButtonBox)
    assert error.geometry().bottom() < buttons.geometry().top()  # nothing drawn over it


def test_the_preview_numbers_rows_by_the_file_lines_its_problems_name(qtbot, tmp_path,
                                                                    make_project):
    project = make_project(tmp_path / "p.annotune", "text-classification",
                           ("negative", "positive"))
    data = tmp_path / "more.csv"
    # line 3 holds a line break, so from there on rows and lines part ways
    rows = [f'"{text}",positive' for text in TEXTS[6:7] + TEXTS[:4]] + ['"Jose\u0301",postive']
    data.write_bytes("\r\n".join(["review,label", *rows]).encode("utf-8") + b"\r\n")
    dialog = ImportDialog(project, registry().task(project.task_name), path=data)
    qtbot.addWidget(dialog)
    dialog.show()
    problem = dialog.problems.item(0).text()
    assert problem.startswith(f"{data}:8 (field 'label'): unknown label 'postive'")
    table = dialog.table
    numbers = [table.verticalHeaderItem(row).text() for row in range(table.rowCount())]
    assert numbers == ["2", "4", "5", "6", "7", "8"]
    bad = table.item(5, 0)
    assert bad.text() == "Jose\u0301" and bad.toolTip() == problem
    assert table.item(4, 0).toolTip() == ""  # a good row is not marked
    project.close()


def test_no_alt_key_on_a_tab_is_taken_from_the_menu_bar_or_another_control(qtbot, tmp_path,
                                                                        make_project):
    window = _opened(qtbot, tmp_path, make_project, [{"text": t} for t in TEXTS])
    menus = {mnemonic(action.text()) for action in window.menuBar().actions()}
    assert menus == {"F", "E", "M", "H"}
    for index in range(window.tabs.count()):
        page = window.tabs.widget(index)
        controls = page.findChildren(QAbstractButton) + [
            label for label in page.findChildren(QLabel) if label.buddy() is not None]
        letters = [mnemonic(control.text()) for control in controls]
        letters = [letter for letter in letters if letter]
        tab = window.tabs.tabText(index)
        # Alt+E on the Runs tab opened the Edit menu, never the underlined Export bundle…
        assert not set(letters) & menus, (tab, letters)
        assert len(letters) == len(set(letters)), (tab, letters)
    sheet = {(e.section, e.description): e.keys for e in collect(window)}
    assert sheet[("Train tab", "Train")] == "Alt+T"
    assert sheet[("Runs tab", "Export bundle")] == "Alt+X"
    assert sheet[("Examples tab", "Keep label")] == "Alt+K"


def test_gui_help_says_what_its_argument_is(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["gui", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "project the .annotune project file to open (default: none" in text


def test_most_uncertain_first_without_suggestions_says_there_are_none(qtbot, tmp_path,
                                                                      make_project):
    window = _opened(qtbot, tmp_path, make_project, [{"text": t} for t in TEXTS])
    labeling = window.views["label"]
    assert not labeling.uncertain.isChecked()  # nothing to order by yet
    labeling.uncertain.setChecked(True)
    # it claimed "The model's suggestions are stored" with none stored
    assert labeling.order_note.isVisible()
    assert labeling.order_note.text() == NO_SUGGESTIONS_NOTE
    assert labeling.current is not None and labeling.current.id == 1  # file order
    window.project.save_predictions("bundle", [
        (3, {"label": "positive", "score": 0.51,
             "probabilities": {"negative": 0.49, "positive": 0.51}}, 0.51)])
    labeling.refresh_current()  # what storing suggestions from Try it does
    assert "least sure about" in labeling.order_note.text()


def test_each_task_suggests_labels_of_its_own_kind(qtbot):
    dialog = NewProjectDialog(registry())
    qtbot.addWidget(dialog)
    examples = {}
    for index in range(dialog.task.count()):
        dialog.task.setCurrentIndex(index)
        if dialog.labels.isVisibleTo(dialog):
            examples[dialog.task.currentData()] = dialog.labels.placeholderText()
    assert "entailment" in examples["pair-classification"]  # not "negative, positive"
    assert "negative" in examples["text-classification"]
    assert "PER" in examples["token-classification"]


def test_a_bare_project_name_lands_where_open_project_finds_it(qtbot, tmp_path, monkeypatch):
    elsewhere = tmp_path / "where the app started"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    dialog = NewProjectDialog(registry(), folder=tmp_path)
    qtbot.addWidget(dialog)
    dialog.labels.setText("negative, positive")
    dialog.path.setText("Josée's reviews 🍕")
    path, task, settings, _base = dialog.values()
    assert path == tmp_path / "Josée's reviews 🍕.annotune"
    assert task == "text-classification" and settings.labels == ("negative", "positive")
    dialog.path.setText(str(tmp_path / "kept.annotune"))
    assert dialog.values()[0] == tmp_path / "kept.annotune"


@pytest.mark.parametrize("low, high", [(0.0, 0.12), (0.0937, 0.1812), (0.0, 1.0), (0.2, 0.87),
                                       (5.3e-05, 0.6931), (-0.3, 0.149), (0.95, 0.951),
                                       (12.0, 1234.5)])
def test_the_axis_covers_every_point_drawn(low, high):
    ticks = nice_ticks(low, high)
    # a loss of 0.12 on an axis that ended at 0.1 was drawn off the top of the chart
    assert ticks[0] <= low and ticks[-1] >= high, ticks
    assert len(ticks) <= 7
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1  # evenly spaced, round numbers


def test_a_training_curve_stays_inside_its_chart(qtbot):
    chart = LineChart("Training loss", "step")
    qtbot.addWidget(chart)
    chart.resize(420, 240)
    for step, loss in enumerate((0.693, 0.12, 0.081, 0.037, 0.0002), start=1):
        chart.add_point("loss", step, loss)
    picture = chart.grab().toImage()
    # the plot starts below the title line; nothing of the curve may be painted above it
    title_bottom = chart.fontMetrics().height() + 8
    curve = chart.colour(0)
    above = [(x, y) for y in range(2, title_bottom - 1) for x in range(picture.width())
             if _close(picture.pixelColor(x, y), curve)]
    assert above == []


def _close(colour, wanted) -> bool:
    return all(abs(a - b) <= 40 for a, b in ((colour.red(), wanted.red()),
                                              (colour.green(), wanted.green()),
                                              (colour.blue(), wanted.blue())))


def test_a_clean_label_check_says_so_instead_of_no_match(qtbot, tmp_path, make_project):
    window = _opened(qtbot, tmp_path, make_project, [{"text": t} for t in TEXTS[:3]])
    project = window.project
    for example_id in (1, 2, 3):
        project.save_annotation(example_id, {"label": "positive"})
    check_id = project.start_label_check({"folds": 2})
    project.finish_label_check(check_id, "finished", [
        (example_id, 0.05, {"label": "positive"}, None, []) for example_id in (1, 2, 3)])
    browser = window.views["examples"]
    window.tabs.setCurrentWidget(browser)
    browser.show_suspects()
    assert browser.model.total == 0
    assert browser.pages.currentWidget() is browser.empty
    # "No example matches this filter and search." read as if the search had gone wrong
    assert "flags no label among the 3 it checked" in browser.empty.text()
    browser.search.setText("pizza")
    browser.apply()
    assert browser.empty.text() == NOTHING_MATCHES  # a search that finds nothing says that
