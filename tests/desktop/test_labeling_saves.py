"""How the labeling view saves: on its own thread, in order, never freezing the window and never
dropping a decision, also while another program holds the project."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from annotune.core.errors import AnnotuneError
from annotune.core.plugins import registry
from annotune.core.store import Project
from annotune.desktop import main_window, save_queue
from annotune.desktop.editors.label_editor import LabelEditor
from annotune.desktop.labeling import LabelingView
from annotune.desktop.main_window import MainWindow


def _view(qtbot, project) -> LabelingView:
    task = registry().task(project.task_name)
    view = LabelingView(project, task, LabelEditor(task, project.settings))
    qtbot.addWidget(view)
    qtbot.show_active(view)
    view.start()
    return view


@contextlib.contextmanager
def project_held(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another program takes the project's write lock and keeps it for ``seconds``."""
    script = textwrap.dedent(f"""
        import sqlite3, time
        db = sqlite3.connect({str(path)!r}, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE project SET value = value WHERE key = 'created'")
        print("locked", flush=True)
        time.sleep({seconds})
        db.execute("COMMIT")
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()


def press(qtbot, view, key) -> float:
    """Press a key in the editor; return how long the window was busy with it (seconds)."""
    started = time.perf_counter()
    qtbot.keyClick(view.editor, key)
    return time.perf_counter() - started


def test_saves_never_freeze_the_window_while_another_program_holds_the_project(
        qtbot, sentiment_project):
    view = _view(qtbot, sentiment_project)
    first = view.current.id
    with project_held(sentiment_project.path, seconds=3):
        busy = [press(qtbot, view, Qt.Key.Key_1), press(qtbot, view, Qt.Key.Key_2),
                press(qtbot, view, Qt.Key.Key_S)]
        assert max(busy) < 1.0  # the window moved on at once ...
        assert view.current.id == first + 3
        assert sentiment_project.annotation(first) is None  # ... the file is still locked
        assert view.saves.outstanding() == 3
        qtbot.keyClick(view.editor, Qt.Key.Key_Left)  # the decision shows as made
        assert view.current.id == first + 2
        qtbot.keyClick(view.editor, Qt.Key.Key_Left)
        assert view.editor.buttons["pos"].isChecked()
        assert view.wait_for_saves(timeout_s=20)
    assert sentiment_project.annotation(first).payload == {"label": "neg"}
    assert sentiment_project.annotation(first + 1).payload == {"label": "pos"}
    assert sentiment_project.annotation(first + 2).status == "skipped"
    assert [h["action"] for h in sentiment_project.history()] == ["skip", "save", "save"]
    assert view.unsaved == {}


def test_a_busy_project_keeps_decisions_until_it_lets_go(qtbot, sentiment_project,
                                                         monkeypatch):
    monkeypatch.setattr(save_queue, "TRY_S", 0.1)
    view = _view(qtbot, sentiment_project)
    messages, failures = [], []
    view.message.connect(messages.append)
    view.saveFailed.connect(lambda *args: failures.append(args))
    first = view.current.id
    with project_held(sentiment_project.path, seconds=1.5):
        qtbot.keyClick(view.editor, Qt.Key.Key_2)
        qtbot.waitUntil(lambda: "unsaved" in view.save_state.text(), timeout=10_000)
        assert any("Waiting to save 1 decision" in m for m in messages)
        assert "lets go" in view.save_state.toolTip()
        assert view.wait_for_saves(timeout_s=20)
    assert sentiment_project.annotation(first).payload == {"label": "pos"}
    assert failures == [] and view.save_state.text() == ""
    assert f"Saved example #{first}" in messages


def test_a_refused_decision_is_reported_and_its_example_comes_back(qtbot, sentiment_project,
                                                                   monkeypatch):
    def refuse(self, example_id, annotation, **kwargs):
        raise AnnotuneError("the disk is full", hint="free some space")

    monkeypatch.setattr(Project, "save_annotation", refuse)
    view = _view(qtbot, sentiment_project)
    failures, recounts = [], []
    view.saveFailed.connect(lambda *args: failures.append(args))
    view.countsChanged.connect(lambda: recounts.append(1))
    first = view.current.id
    qtbot.keyClick(view.editor, Qt.Key.Key_1)
    assert view.wait_for_saves()
    assert failures == [("save", first, "the disk is full — free some space")]
    assert recounts and view.unsaved == {}
    assert sentiment_project.annotation(first) is None
    monkeypatch.undo()
    view.current = None
    view.start()
    assert view.current.id == first  # unlabeled again: it comes back in the queue


def test_closing_waits_for_the_decisions_still_being_written(qtbot, sentiment_project):
    view = _view(qtbot, sentiment_project)
    first = view.current.id
    with project_held(sentiment_project.path, seconds=1.5):
        qtbot.keyClick(view.editor, Qt.Key.Key_1)
        assert not view.close_saves(timeout_s=0.2)  # still waiting: nothing is dropped
        assert view.saves.outstanding() == 1
        assert view.close_saves(timeout_s=20)
    assert sentiment_project.annotation(first).payload == {"label": "neg"}


def test_undo_waits_for_the_queued_saves_and_undoes_the_newest(qtbot, sentiment_project):
    view = _view(qtbot, sentiment_project)
    first = view.current.id
    with project_held(sentiment_project.path, seconds=1):
        qtbot.keyClick(view.editor, Qt.Key.Key_1)
        qtbot.keyClick(view.editor, Qt.Key.Key_2)
        view.undo()
        assert view.wait_for_saves(timeout_s=20)
    assert sentiment_project.annotation(first).payload == {"label": "neg"}
    assert sentiment_project.annotation(first + 1) is None
    assert view.current.id == first + 1


def test_the_idle_save_thread_makes_a_copy_of_the_file_whole(qtbot, sentiment_project,
                                                            tmp_path, monkeypatch):
    monkeypatch.setattr(save_queue, "IDLE_CHECKPOINT_S", 0.2)
    view = _view(qtbot, sentiment_project)
    for key in (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_1, Qt.Key.Key_2):
        qtbot.keyClick(view.editor, key)
    assert view.wait_for_saves()
    qtbot.wait(1000)  # idle: the save thread folds the log into the file
    copy = tmp_path / "copied while open.annotune"
    shutil.copyfile(sentiment_project.path, copy)  # the file alone, no -wal
    with Project.open(copy) as copied:
        assert copied.count(status="accepted") == 4


def _window(qtbot, path: Path) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    qtbot.show_active(window)
    assert window.open_project(path)
    return window


def test_the_window_closes_only_once_every_decision_is_written(qtbot, sentiment_project,
                                                              monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    path = sentiment_project.path
    sentiment_project.close()
    window = _window(qtbot, path)
    labeling = window.views["label"]
    first = labeling.current.id
    asked = []
    monkeypatch.setattr(main_window, "SAVES_WAIT_S", 0.2)
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args)
                        or (QMessageBox.StandardButton.Cancel if len(asked) == 1
                            else QMessageBox.StandardButton.Retry))
    with project_held(path, seconds=2):
        qtbot.keyClick(labeling.editor, Qt.Key.Key_2)
        assert not window.close_project()  # Cancel: the project stays open, decision queued
        assert window.project is not None and labeling.saves.outstanding() == 1
        assert window.close_project()  # Retry until written
    assert len(asked) >= 2
    with Project.open(path) as reopened:
        assert reopened.annotation(first).payload == {"label": "pos"}


def test_save_a_copy_from_the_file_menu(qtbot, sentiment_project, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    path = sentiment_project.path
    sentiment_project.close()
    window = _window(qtbot, path)
    qtbot.keyClick(window.views["label"].editor, Qt.Key.Key_1)
    assert window.views["label"].wait_for_saves()
    copy = tmp_path / "copy of 東京 🍕.annotune"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(copy), ""))
    assert window.save_copy_action.isEnabled()
    window.save_copy_action.trigger()
    qtbot.waitUntil(lambda: "Saved a copy" in window.statusBar().currentMessage(),
                    timeout=20_000)
    with Project.open(copy) as copied:
        assert copied.count() == 6 and copied.count(status="accepted") == 1


@pytest.mark.parametrize("answer", ["Retry", "Cancel"])
def test_finish_saves_asks_only_while_decisions_wait(qtbot, sentiment_project, monkeypatch,
                                                    answer):
    from PySide6.QtWidgets import QMessageBox

    path = sentiment_project.path
    sentiment_project.close()
    window = _window(qtbot, path)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args)
                        or getattr(QMessageBox.StandardButton, answer))
    assert window.finish_saves()  # nothing queued: no question
    assert asked == []
