"""The desktop's visual style: palette, spacing, type sizes, label and state colours, dark mode.

One Fusion style everywhere with annotune's own light and dark palettes, so the app looks the
same on every system and dark mode works on Linux desktops whose native style ignores it. The
scheme follows the system (Qt 6's ``QStyleHints.colorScheme``, live when it changes); the
``ANNOTUNE_COLOR_SCHEME`` environment variable (``light`` or ``dark``) overrides it.

Only the palette and the fonts are set for the whole application: a stylesheet on the
QApplication would send every widget (and every cell of a million-row table) through Qt's
slower stylesheet engine. The few widgets that need more (headings, empty states, the primary
button, state words) get it from the helpers below, on themselves alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QBoxLayout, QLabel, QPushButton, QWidget

ICONS = Path(__file__).resolve().parent / "icons"  # annotune-<size>.png, also the launcher's

# -- spacing (multiples of one grid unit, in device-independent pixels) -----------------------
UNIT = 4
SPACING = 2 * UNIT  # between widgets in a row or column
MARGIN = 4 * UNIT  # around a page
SECTION = 6 * UNIT  # between groups of widgets

# -- type scale (factors of the system font, so it follows the user's size and DPI) -----------
TITLE_SCALE = 2.0
HEADING_SCALE = 1.25
EMPTY_STATE_SCALE = 1.15


@dataclass(frozen=True)
class Scheme:
    """The colours of one scheme (light or dark)."""

    name: str
    window: str
    base: str
    alternate: str
    text: str
    muted: str
    border: str
    accent: str
    accent_text: str
    success: str
    warning: str
    danger: str
    tooltip: str
    labels: tuple[str, ...]  # one colour per label, in label order (repeats after the last)


# Label colours: Okabe and Ito's colour-blind-safe set, lightened for a light background and
# deepened for a dark one, so black or white text stays readable on top.
LIGHT = Scheme(
    name="light", window="#f5f6f8", base="#ffffff", alternate="#f0f2f5", text="#1c2230",
    muted="#5d6675", border="#d3d8e0", accent="#2563d9", accent_text="#ffffff",
    success="#1b7f46", warning="#a35f00", danger="#c42b2b", tooltip="#ffffe8",
    labels=("#9cc9f0", "#f5c27a", "#8fd6b8", "#f2a1c4", "#c4b2ea", "#f4e27b", "#f2a98e",
            "#b6c4cf"))
DARK = Scheme(
    name="dark", window="#1d2026", base="#252930", alternate="#2b3038", text="#e5e8ec",
    muted="#9aa3af", border="#3b414c", accent="#6fa3ff", accent_text="#0f1420",
    success="#56c98d", warning="#f0b04c", danger="#ff7a70", tooltip="#2b3038",
    labels=("#1f5f93", "#8a5a12", "#1d6b50", "#8c3560", "#5a4796", "#6b5c10", "#8c4330",
            "#4c5a66"))

STATE_ROLES = {"accepted": "success", "finished": "success", "skipped": "warning",
               "cancelled": "warning", "failed": "danger", "running": "accent",
               "unlabeled": "muted"}

_state = {"scheme": LIGHT, "following": False}


# -- the scheme ------------------------------------------------------------------------------
def system_scheme() -> Qt.ColorScheme:
    """Return the colour scheme asked for: the environment override, else the system's."""
    forced = os.environ.get("ANNOTUNE_COLOR_SCHEME", "").strip().lower()
    if forced == "dark":
        return Qt.ColorScheme.Dark
    if forced == "light":
        return Qt.ColorScheme.Light
    app = QGuiApplication.instance()
    return app.styleHints().colorScheme() if app is not None else Qt.ColorScheme.Unknown


def scheme_for(color_scheme: Qt.ColorScheme) -> Scheme:
    """Return annotune's colours for a Qt colour scheme (Unknown reads as light)."""
    return DARK if color_scheme == Qt.ColorScheme.Dark else LIGHT


def current() -> Scheme:
    """Return the colours in use now."""
    return _state["scheme"]


def is_dark() -> bool:
    return current() is DARK


def palette(scheme: Scheme) -> QPalette:
    """Build the QPalette of a scheme (every group, disabled text included)."""
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: scheme.window,
        QPalette.ColorRole.WindowText: scheme.text,
        QPalette.ColorRole.Base: scheme.base,
        QPalette.ColorRole.AlternateBase: scheme.alternate,
        QPalette.ColorRole.Text: scheme.text,
        QPalette.ColorRole.Button: scheme.alternate if scheme is DARK else scheme.base,
        QPalette.ColorRole.ButtonText: scheme.text,
        QPalette.ColorRole.BrightText: scheme.danger,
        QPalette.ColorRole.Highlight: scheme.accent,
        QPalette.ColorRole.HighlightedText: scheme.accent_text,
        QPalette.ColorRole.Link: scheme.accent,
        QPalette.ColorRole.LinkVisited: scheme.accent,
        QPalette.ColorRole.ToolTipBase: scheme.tooltip,
        QPalette.ColorRole.ToolTipText: scheme.text,
        QPalette.ColorRole.PlaceholderText: scheme.muted,
        QPalette.ColorRole.Mid: scheme.border,
        QPalette.ColorRole.Midlight: scheme.alternate,
        QPalette.ColorRole.Dark: scheme.border,
        QPalette.ColorRole.Light: scheme.base,
        QPalette.ColorRole.Shadow: "#000000",
        QPalette.ColorRole.Accent: scheme.accent,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(scheme.muted))
    return pal


def apply_style(app: QApplication | None = None,
                color_scheme: Qt.ColorScheme | None = None) -> Scheme:
    """Give the application annotune's style, icon and palette; follow the system scheme.

    ``color_scheme`` forces a scheme (tests, screenshots); by default the system's is used
    and followed when it changes while the app runs.
    """
    app = app or QApplication.instance()
    if app is None:
        raise RuntimeError("create the QApplication before applying the style")
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    if app.windowIcon().isNull():
        app.setWindowIcon(app_icon())
    app.setProperty("annotune_styled", True)
    scheme = scheme_for(color_scheme if color_scheme is not None else system_scheme())
    _use(app, scheme)
    if not _state["following"]:
        _state["following"] = True
        app.styleHints().colorSchemeChanged.connect(_system_scheme_changed)
    return scheme


def _system_scheme_changed(color_scheme: Qt.ColorScheme) -> None:
    if os.environ.get("ANNOTUNE_COLOR_SCHEME"):
        return  # the person chose a scheme for annotune; the system's does not override it
    app = QApplication.instance()
    if app is not None:
        _use(app, scheme_for(color_scheme))


def _use(app: QApplication, scheme: Scheme) -> None:
    _state["scheme"] = scheme
    app.setPalette(palette(scheme))
    for widget in app.allWidgets():  # helpers' stylesheets carry colours of the old scheme
        role = widget.property("annotune_role")
        if role:
            _restyle(widget, str(role))


def ensure_style() -> None:
    """Apply the style once when the app was created elsewhere (tests, embedding programs)."""
    app = QApplication.instance()
    if app is not None and app.property("annotune_styled") is not True:
        apply_style(app)


# -- colours for things ----------------------------------------------------------------------
def label_colour(index: int, scheme: Scheme | None = None) -> QColor:
    """Return the colour of the label at ``index`` of the project's labels."""
    colours = (scheme or current()).labels
    return QColor(colours[index % len(colours)])


def state_colour(state: str | None, scheme: Scheme | None = None) -> QColor:
    """Return the colour of a status word (labeled, skipped, failed, running, …)."""
    scheme = scheme or current()
    return QColor(getattr(scheme, STATE_ROLES.get(state or "unlabeled", "muted")))


def change_colour(better: bool | None, scheme: Scheme | None = None) -> QColor:
    """Return the colour of a change between two runs: better, worse or neither (None)."""
    scheme = scheme or current()
    if better is None:
        return QColor(scheme.muted)
    return QColor(scheme.success if better else scheme.danger)


# -- widgets ---------------------------------------------------------------------------------
def _restyle(widget: QWidget, role: str) -> None:
    scheme = current()
    base = QApplication.font()
    size = base.pointSizeF() if base.pointSizeF() > 0 else 10.0
    sheets = {
        "title": f"font-size: {size * TITLE_SCALE:.1f}pt; font-weight: 600; "
                 f"color: {scheme.text};",
        "heading": f"font-size: {size * HEADING_SCALE:.1f}pt; font-weight: 600; "
                   f"color: {scheme.text};",
        "muted": f"color: {scheme.muted};",
        "empty": f"font-size: {size * EMPTY_STATE_SCALE:.1f}pt; color: {scheme.muted}; "
                 f"padding: {SECTION}px;",
        "primary": f"QPushButton {{ background: {scheme.accent}; color: {scheme.accent_text}; "
                   f"border: 1px solid {scheme.accent}; border-radius: {UNIT}px; "
                   f"padding: {UNIT + 1}px {3 * UNIT}px; font-weight: 600; }}"
                   f"QPushButton:disabled {{ background: {scheme.border}; "
                   f"color: {scheme.muted}; border-color: {scheme.border}; }}",
        "error": f"color: {scheme.danger};",
    }
    if role.startswith("state:"):
        widget.setStyleSheet(f"color: {state_colour(role[6:], scheme).name()}; "
                             "font-weight: 600;")
    else:
        widget.setStyleSheet(sheets.get(role, ""))


def _role(widget: QWidget, role: str) -> QWidget:
    widget.setProperty("annotune_role", role)
    _restyle(widget, role)
    return widget


def title(label: QLabel) -> QLabel:
    """Style a label as a page title (the start screen's name)."""
    return _role(label, "title")


def heading(label: QLabel) -> QLabel:
    """Style a label as the heading of a section."""
    return _role(label, "heading")


def muted(label: QLabel) -> QLabel:
    """Style a label as secondary text (explanations, counts)."""
    return _role(label, "muted")


def explanation(text: str) -> QLabel:
    """Return a wrapped secondary paragraph (a dialog's or a view's opening words)."""
    label = muted(QLabel(text))
    label.setWordWrap(True)
    return label


def padded(layout: QBoxLayout) -> QBoxLayout:
    """Give a page's or dialog's main layout the house margins and spacing."""
    layout.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
    layout.setSpacing(SPACING)
    return layout


def error_text(label: QLabel) -> QLabel:
    """Style a label that shows what went wrong."""
    return _role(label, "error")


def empty_state(label: QLabel) -> QLabel:
    """Style a label that fills an empty view and says what to do next."""
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setTextFormat(Qt.TextFormat.RichText)
    return _role(label, "empty")


def primary(button: QPushButton) -> QPushButton:
    """Style the one button of a view that does its main job."""
    return _role(button, "primary")


def state_word(label: QLabel, state: str | None) -> QLabel:
    """Colour a label by a status (labeled, skipped, failed, …)."""
    return _role(label, f"state:{state or 'unlabeled'}")


def font_scaled(font: QFont, scale: float, bold: bool = False) -> QFont:
    """Return a copy of ``font`` scaled (for painted text, where stylesheets do not reach)."""
    scaled = QFont(font)
    if scaled.pointSizeF() > 0:
        scaled.setPointSizeF(scaled.pointSizeF() * scale)
    scaled.setBold(bold)
    return scaled


# -- the icon --------------------------------------------------------------------------------
def app_icon() -> QIcon:
    """Return annotune's icon in every size it ships (window, task bar, dialogs).

    The same pictures as the desktop launcher's (desktop/icons, rendered from annotune.svg by
    packaging/render_icons.py), so the window and the menu entry look alike.
    """
    icon = QIcon()
    for path in sorted(ICONS.glob("annotune-*.png")):
        icon.addFile(str(path))
    return icon

