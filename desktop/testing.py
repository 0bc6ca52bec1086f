"""Helpers for driving desktop widgets from tests and scripts (offscreen or on screen)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QApplication, QWidget


def show_active(qtbot: Any, widget: QWidget) -> None:
    """Show a top-level widget and wait until it is the active window (keys reach it)."""
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()
    widget.raise_()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is widget, timeout=3000)
