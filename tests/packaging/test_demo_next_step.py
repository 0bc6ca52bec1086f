"""The demo's next step is a command that runs in the shell that ran `make demo`."""

from __future__ import annotations

import os
import sys

from annotune.core import demo
from annotune.core.errors import EXIT_NO_WINDOW


def _script(folder, name="annotune"):
    script = folder / name
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def test_the_venvs_annotune_off_path_is_named_by_its_path(tmp_path, monkeypatch):
    # `make demo` runs .venv/bin/annotune without activating the venv
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    _script(tmp_path / ".venv" / "bin")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [".venv/bin/annotune", "demo"])
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert demo.runnable_command() == ".venv/bin/annotune"


def test_an_annotune_on_path_is_named_by_its_name(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    script = _script(tmp_path / "bin")
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", ""))
    assert demo.runnable_command() == "annotune"


def test_the_missing_window_message_names_the_runnable_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [".venv/bin/annotune", "demo"])
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("DISPLAY", ":0")  # a display, whose window libraries are missing
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(demo.subprocess, "call", lambda *args, **kwargs: EXIT_NO_WINDOW)
    project = tmp_path / "demo.annotune"
    assert demo.open_window(project, "auto") == 0
    assert f".venv/bin/annotune gui {project}" in capsys.readouterr().out
