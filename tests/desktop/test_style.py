"""The visual style: light and dark palettes that follow the system, readable label colours,
the window icon, and the chart's legend in words."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel

from annotune.desktop import style
from annotune.desktop.chart import LineChart


@pytest.fixture(autouse=True)
def light_again(qapp, monkeypatch):
    """Leave the application light, as the other tests expect it."""
    monkeypatch.delenv("ANNOTUNE_COLOR_SCHEME", raising=False)
    yield
    style.apply_style(qapp, Qt.ColorScheme.Light)


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF())
            + 0.0722 * channel(colour.blueF()))


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize(("scheme", "dark"), [(Qt.ColorScheme.Dark, True),
                                              (Qt.ColorScheme.Light, False),
                                              (Qt.ColorScheme.Unknown, False)])
def test_forcing_a_scheme_gives_its_palette(qapp, scheme, dark):
    style.apply_style(qapp, scheme)
    palette = qapp.palette()
    window = palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.WindowText)
    assert (window.lightness() < 128) is dark
    assert contrast(window, text) >= 7  # body text: WCAG AAA
    assert style.is_dark() is dark


def test_the_app_follows_the_system_when_its_scheme_changes(qapp):
    style.apply_style(qapp, Qt.ColorScheme.Light)
    hint = style.empty_state(QLabel("No examples yet."))
    qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert qapp.palette().color(QPalette.ColorRole.Window).lightness() < 128
    assert style.DARK.muted in hint.styleSheet()  # helpers' colours follow too
    qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > 128
    assert style.LIGHT.muted in hint.styleSheet()


def test_a_chosen_scheme_wins_over_the_system(qapp, monkeypatch):
    monkeypatch.setenv("ANNOTUNE_COLOR_SCHEME", "dark")
    style.apply_style(qapp)
    qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert style.is_dark()


@pytest.mark.parametrize("scheme", [style.LIGHT, style.DARK], ids=["light", "dark"])
def test_label_and_state_colours_stay_readable(scheme):
    text, base = QColor(scheme.text), QColor(scheme.base)
    for index in range(len(scheme.labels)):
        assert contrast(style.label_colour(index, scheme), text) >= 4.5, index
    for state in ("accepted", "skipped", "failed", "running", "unlabeled"):
        assert contrast(style.state_colour(state, scheme), base) >= 3.0, state
    assert contrast(QColor(scheme.accent), QColor(scheme.accent_text)) >= 4.5


def test_the_window_icon_is_drawn(qapp):
    style.apply_style(qapp)
    icon = style.app_icon()
    assert not icon.isNull() and not qapp.windowIcon().isNull()
    image = icon.pixmap(64, 64).toImage()
    assert image.pixelColor(32, 32).alpha() == 255 and image.pixelColor(0, 0).alpha() == 0


def test_the_chart_legend_speaks_words(qtbot):
    chart = LineChart("Validation metrics", "epoch", unit_range=True)
    qtbot.addWidget(chart)
    chart.add_point("macro_f1", 1, 0.8123)
    chart.add_point("validation_loss", 1, 0.41)
    assert chart.legend_label("macro_f1") == "Macro F1 0.8123"
    assert chart.legend_label("validation_loss") == "Validation loss 0.41"
    chart.resize(420, 240)
    chart.show()
    assert not chart.grab().isNull()
