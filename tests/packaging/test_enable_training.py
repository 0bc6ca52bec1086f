"""Without a Python that has torch, Train offers to enable training; the choice is kept."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from annotune.core import training_env  # noqa: E402


@pytest.fixture
def frozen_like(tmp_path, monkeypatch, qapp):
    """An app whose own interpreter has no torch, with throwaway settings and data."""
    from PySide6.QtCore import QSettings

    monkeypatch.setenv("ANNOTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(training_env.ENV_PYTHON, raising=False)
    monkeypatch.setattr(training_env, "_this_installation", lambda: None)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    qapp.setOrganizationName("annotune-tests")
    qapp.setApplicationName("annotune-tests")
    training_env.forget_probes()
    yield
    QSettings().clear()
    training_env.forget_probes()


def _ask(qtbot):
    from PySide6.QtWidgets import QWidget

    from annotune.desktop.training_env import with_interpreter

    parent = QWidget()
    qtbot.addWidget(parent)
    used, cancelled = [], []
    with_interpreter(parent, used.append, cancelled=lambda: cancelled.append(True))
    qtbot.waitUntil(lambda: getattr(parent, "enable_training_dialog", None) is not None,
                    timeout=30_000)
    return parent.enable_training_dialog, used, cancelled


def test_choosing_a_python_with_torch_enables_training_and_is_kept(qtbot, frozen_like):
    from annotune.desktop.training_env import configured_python

    dialog, used, _ = _ask(qtbot)
    dialog.use_python(sys.executable)
    qtbot.waitUntil(lambda: bool(used), timeout=60_000)
    assert used[0].python == sys.executable and used[0].torch
    assert configured_python() == sys.executable
    found, _ = training_env.find(configured_python(), None)
    assert found is not None and found.source == "chosen in the app"


def test_a_python_without_torch_is_refused_with_its_reason(qtbot, frozen_like, tmp_path):
    dialog, used, _ = _ask(qtbot)
    dialog.use_python("/usr/bin/true")
    qtbot.waitUntil(lambda: "cannot train" in dialog.log.toPlainText(), timeout=30_000)
    assert not used and dialog.isVisible()


def test_creating_runs_the_steps_and_shows_their_output(qtbot, frozen_like, monkeypatch):
    steps = [("saying hello", [sys.executable, "-c", "print('hello from pip')"]),
             ("checking", [sys.executable, "-c", "pass"])]
    monkeypatch.setattr(training_env, "plan", lambda data_dir: steps)
    dialog, used, _ = _ask(qtbot)
    dialog.create()
    qtbot.waitUntil(lambda: bool(used), timeout=60_000)
    assert "hello from pip" in dialog.log.toPlainText()
    assert used[0].source == "created"


def test_cancelling_gives_the_button_back(qtbot, frozen_like):
    dialog, used, cancelled = _ask(qtbot)
    dialog.reject()
    assert cancelled == [True] and not used
