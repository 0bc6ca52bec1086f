"""The demo's last step: a system that cannot show a window does not fail a finished demo."""

from __future__ import annotations

import subprocess

import pytest

from annotune.core import demo
from annotune.core.errors import EXIT_NO_WINDOW


@pytest.fixture
def window_exits(monkeypatch):
    """Make the desktop app exit at once with a chosen status; record that it was started."""
    started: list[list[str]] = []

    def exits_with(code: int) -> None:
        def call(command, *args, **kwargs):
            started.append(command)
            return code
        monkeypatch.setattr(subprocess, "call", call)

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    return exits_with, started


def test_missing_window_libraries_leave_the_automatic_demo_successful(window_exits, tmp_path,
                                                                      capsys):
    exits_with, started = window_exits
    exits_with(EXIT_NO_WINDOW)
    project = tmp_path / "demo.annotune"
    assert demo.open_window(project, "auto") == 0
    assert started and started[0][-1] == str(project)
    assert f"annotune gui {project}" in capsys.readouterr().out


def test_asking_for_the_window_still_fails_without_it(window_exits, tmp_path):
    exits_with, _ = window_exits
    exits_with(EXIT_NO_WINDOW)
    assert demo.open_window(tmp_path / "demo.annotune", "yes") == EXIT_NO_WINDOW


def test_a_window_that_crashes_is_not_hidden(window_exits, tmp_path):
    exits_with, _ = window_exits
    exits_with(134)
    assert demo.open_window(tmp_path / "demo.annotune", "auto") == 134


def test_no_window_is_started_without_a_display(window_exits, tmp_path, monkeypatch):
    _, started = window_exits
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert demo.open_window(tmp_path / "demo.annotune", "auto") == 0
    assert started == []
