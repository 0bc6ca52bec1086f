"""The desktop package ships the app only: helpers that drive widgets in tests stay in tests/."""

from __future__ import annotations

from pathlib import Path

DESKTOP = Path(__file__).resolve().parents[2] / "desktop"


def test_no_desktop_module_is_a_test_helper():
    helpers = [str(path.relative_to(DESKTOP)) for path in sorted(DESKTOP.rglob("*.py"))
               if "qtbot" in path.read_text(encoding="utf-8")
               or "import pytest" in path.read_text(encoding="utf-8")]
    assert helpers == []
