"""Fixtures for the desktop tests: offscreen Qt, throwaway settings, small projects."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from annotune.core.formats.base import ImportRecord  # noqa: E402
from annotune.core.store import Project  # noqa: E402
from annotune.core.tasks import TaskSettings  # noqa: E402


def show_active(qtbot, widget) -> None:
    """Show a top-level widget and wait until it is the active window (keys reach it)."""
    from PySide6.QtWidgets import QApplication

    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()
    widget.raise_()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is widget, timeout=3000)


@pytest.fixture
def qtbot(qtbot):
    """pytest-qt's qtbot, which can also show a window ready for keys: qtbot.show_active(w)."""
    qtbot.show_active = partial(show_active, qtbot)
    return qtbot


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory, monkeypatch, qapp):
    """Keep QSettings, logs and recent projects out of the real user folders."""
    from PySide6.QtCore import QSettings

    folder = tmp_path_factory.mktemp("settings")
    monkeypatch.setenv("ANNOTUNE_DATA_DIR", str(folder / "data"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    qapp.setOrganizationName("annotune-tests")
    qapp.setApplicationName("annotune-tests")
    yield
    QSettings().clear()


def make_project(path: Path, task: str, labels: tuple[str, ...] = (),
                 rows: list[dict[str, str]] | None = None, **settings) -> Project:
    """Create a project and add one example per row (one transaction)."""
    project = Project.create(path, task=task, settings=TaskSettings(labels=labels, **settings))
    records = [ImportRecord(fields=row, line=i + 1) for i, row in enumerate(rows or [])]
    project.add_examples(records, source="test")
    return project


@pytest.fixture(name="make_project")
def make_project_fixture():
    """Hand tests the make_project helper (conftest is not importable in importlib mode)."""
    return make_project


@pytest.fixture
def sentiment_project(tmp_path) -> Project:
    rows = [{"text": f"review number {i} was {'great' if i % 2 else 'dull'}"} for i in range(6)]
    project = make_project(tmp_path / "sentiment.annotune", "text-classification",
                           ("neg", "pos"), rows)
    yield project
    project.close()
