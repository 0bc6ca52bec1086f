"""The app shell: menus and shortcuts, counts, start screen, plugin failures, crash dialog."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from annotune.core.errors import AnnotuneError
from annotune.core.plugins import PluginFailure, registry
from annotune.desktop.app import show_plugin_failures
from annotune.desktop.crash import CrashHandler, setup_logging
from annotune.desktop.main_window import MainWindow
from annotune.desktop.plugins import build_editor_registry
from annotune.desktop.recent import recent_projects
from annotune.desktop.start_screen import NewProjectDialog


def _window(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    qtbot.show_active(window)
    return window


def test_menus_have_the_standard_shortcuts(qtbot):
    window = _window(qtbot)
    shortcuts = {a.text().replace("&", ""): a.shortcut() for a in
                 (window.new_action, window.open_action, window.quit_action,
                  window.undo_action, window.redo_action)}
    assert shortcuts["New project…"] == QKeySequence(QKeySequence.StandardKey.New)
    assert shortcuts["Open project…"].toString() == "Ctrl+O"
    assert shortcuts["Quit"].toString() == "Ctrl+Q"
    assert shortcuts["Undo"].toString() == "Ctrl+Z"
    assert shortcuts["Redo"].toString() == "Ctrl+Shift+Z"
    assert window.undo_action.toolTip().endswith("(Ctrl+Z)")
    assert not window.train_action.isEnabled()  # no project yet
    assert window.stack.currentWidget() is window.start_screen


def test_open_label_and_count(qtbot, sentiment_project):
    path = sentiment_project.path
    sentiment_project.close()
    window = _window(qtbot)
    assert window.open_project(path)
    assert window.counts_label.text() == "Labeled 0 of 6 examples"
    labeling = window.views["label"]
    first = labeling.current.id
    qtbot.keyClick(labeling.editor, Qt.Key.Key_1)
    assert window.counts_label.text() == "Labeled 1 of 6 examples"
    qtbot.keyClick(labeling.editor, Qt.Key.Key_S)
    assert window.counts_label.text() == "Labeled 1 of 6 examples · 1 skipped"
    window.undo_action.trigger()
    assert labeling.wait_for_saves()  # undo runs after the queued saves, on the save thread
    assert window.counts_label.text() == "Labeled 1 of 6 examples"
    window.undo_action.trigger()
    assert labeling.wait_for_saves()
    assert window.counts_label.text() == "Labeled 0 of 6 examples"
    assert labeling.current.id == first
    window.redo_action.trigger()
    assert labeling.wait_for_saves()
    assert window.project.annotation(first).payload == {"label": "neg"}
    assert [p.resolve() for p in recent_projects()] == [path.resolve()]
    window.close_project()
    assert window.start_screen.recent.count() == 1


def test_open_missing_project_shows_error(qtbot, tmp_path):
    window = _window(qtbot)
    assert not window.open_project(tmp_path / "missing.annotune")
    box = window.findChild(object, "error_dialog")
    assert box is not None and "missing.annotune" in box.text()


def test_new_project_dialog_values(qtbot, tmp_path):
    dialog = NewProjectDialog(registry(), folder=tmp_path)
    qtbot.addWidget(dialog)
    dialog.task.setCurrentIndex(dialog.task.findData("token-classification"))
    dialog.labels.setText("PER, ORG ,LOC")
    path, task, settings, base = dialog.values()
    assert task == "token-classification" and settings.labels == ("PER", "ORG", "LOC")
    assert base is None and path.parent == tmp_path
    dialog.labels.setText("")
    dialog._check()
    assert "label" in dialog.error.text() and dialog.result() == 0


def test_plugin_failures_are_shown_once(qtbot):
    window = _window(qtbot)
    box = show_plugin_failures(window, [str(PluginFailure("broken_pkg", "ImportError: nope"))])
    assert "broken_pkg" in box.text()
    assert show_plugin_failures(window, []) is None


def test_editor_plugins_register_through_the_desktop_hook():
    from annotune.desktop.hookspecs import hookimpl

    class Broken:
        @hookimpl
        def register_editors(self, register):
            raise RuntimeError("cannot build")

    found = build_editor_registry(extra_plugins=(Broken(),))
    assert set(found.editors) >= {"label", "spans", "answers"}
    assert any("cannot build" in str(f) for f in found.failures)


def test_a_second_editor_for_a_kind_is_refused_not_swapped_in():
    """Which of two editors for one kind was shown depended on load order; now the second fails."""
    from annotune.desktop.hookspecs import hookimpl

    builtin = build_editor_registry().editors["spans"]

    class Rival:
        @hookimpl
        def register_editors(self, register):
            register("spans", lambda *args: None)

    found = build_editor_registry(extra_plugins=(Rival(),))
    assert found.editors["spans"] is builtin
    assert any("'spans' is registered twice" in str(f) for f in found.failures)


def test_crash_handler_shows_log_path(qtbot):
    window = _window(qtbot)
    handler = CrashHandler(setup_logging())
    try:
        raise ValueError("boom")
    except ValueError:
        handler(*sys.exc_info())
    assert str(handler.log_path) in handler.last_dialog.text()
    assert "boom" in handler.log_path.read_text(encoding="utf-8")
    handler(AnnotuneError, AnnotuneError("bad file", where="x.csv:3"), None)
    assert handler.last_dialog.text().count("boom")  # a user error is no crash
    window.close()


def test_closing_offers_to_save_marked_entities(qtbot, tmp_path, make_project, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER",),
                           [{"text": "Grace Hopper wrote code."}])
    path = project.path
    project.close()
    window = _window(qtbot)
    window.open_project(path)
    editor = window.views["label"].editor
    editor.text_view.select(0, 5)
    editor.apply_label("PER")
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args, **kw: asked.append(args) or QMessageBox.StandardButton.Save)
    window.close()
    assert len(asked) == 1
    from annotune.core.store import Project

    with Project.open(path) as reopened:
        assert reopened.annotation(1).payload == {"spans": [{"start": 0, "end": 5,
                                                             "label": "PER"}]}


def test_error_dialogs_name_the_windows_controls_not_command_line_options(qtbot, tmp_path):
    window = _window(qtbot)
    assert not window.open_project(tmp_path / "missing 🍕.annotune")
    text = window.findChild(object, "error_dialog").text()
    assert "missing 🍕.annotune" in text and "File ▸ New project…" in text
    assert "`annotune" not in text and "--" not in text


def test_edit_add_label_keeps_the_saved_labels_and_gives_the_new_one_a_key(qtbot,
                                                                           sentiment_project):
    path = sentiment_project.path
    sentiment_project.close()
    window = _window(qtbot)
    assert window.open_project(path)
    labeling = window.views["label"]
    first = labeling.current.id
    qtbot.keyClick(labeling.editor, Qt.Key.Key_2)
    assert labeling.wait_for_saves()
    window.tabs.setCurrentWidget(window.views["examples"])
    assert window.add_label("mixed 🍕")
    assert window.tabs.currentWidget() is window.views["examples"]  # the person stays put
    assert window.project.settings.labels == ("neg", "pos", "mixed 🍕")
    assert window.project.annotation(first).payload == {"label": "pos"}
    labeling = window.views["label"]
    qtbot.show_active(window)  # as the person's click on the tab would
    window.tabs.setCurrentWidget(labeling)
    second = labeling.current.id
    qtbot.keyClick(labeling.editor, Qt.Key.Key_3)
    assert labeling.wait_for_saves()
    assert window.project.annotation(second).payload == {"label": "mixed 🍕"}
    assert not window.add_label("pos")  # refused with a dialog, nothing changed
    assert window.project.settings.labels == ("neg", "pos", "mixed 🍕")
    window.close_project()
