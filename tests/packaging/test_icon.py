"""The app's icon: one drawing, every size a desktop asks for, used for the windows too."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "desktop" / "icons"


def test_every_size_is_rendered_from_the_drawing():
    from PySide6.QtGui import QImage

    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        image = QImage(str(ICONS / f"annotune-{size}.png"))
        assert (image.width(), image.height()) == (size, size)
    assert (ICONS / "annotune.svg").read_text().lstrip().startswith("<svg")


def test_the_windows_carry_the_icon(qapp):
    from annotune.desktop.app import application

    app = application()
    assert not app.windowIcon().isNull()
    assert len(app.windowIcon().availableSizes()) >= 8


def test_the_launcher_names_the_icon_and_the_program():
    entry = (ROOT / "packaging" / "annotune.desktop").read_text()
    assert "\nIcon=annotune\n" in entry and "\nExec=annotune-desktop %f\n" in entry
    assert "\nType=Application\n" in entry
