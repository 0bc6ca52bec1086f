"""The Help ▸ Keyboard shortcuts sheet, read from the window's own actions and shortcuts.

Nothing here is a hand-kept list of keys: the sheet is built each time it opens from the
QActions in the menu bar (their shortcuts and their Alt+letter menu path), from the editor's
``key_help`` and the labeling buttons' tooltips, from the Examples tab's ``key_help`` (the
"Suspect labels" review keys), and from every QShortcut in the window, so a
key added, changed or removed in the code is what the sheet shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMenu,
    QMenuBar,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from annotune.desktop import style

NATIVE = QKeySequence.SequenceFormat.NativeText
# Keys of every window that no menu or view names: Qt's own, and the main window's tab keys
# (its shortcuts, so that a table cannot keep them; listed here, not under "Other keys").
BUILT_IN = (("Ctrl+Tab", "Next tab"), ("Ctrl+Shift+Tab", "Previous tab"),
            ("Alt+letter", "Open the menu with that underlined letter"),
            ("Esc", "Close a dialog without doing anything"))
# Spellings of keys in hand-written help texts, as QKeySequence writes them.
KEY_SPELLINGS = {"←": "Left", "→": "Right", "↑": "Up", "↓": "Down", "PgDn": "PgDown",
                 "Delete": "Del"}
# One key to a person, two to Qt: Enter names the main keyboard's Return key too.
SAME_KEYS = {"Enter": ("Enter", "Return"), "Del": ("Del", "Backspace")}


@dataclass(frozen=True)
class Entry:
    """One line of the sheet: what it does, its keys, and where it lives."""

    section: str
    description: str
    keys: str  # e.g. "Ctrl+N", "1–3", "" (none: reachable through menu_keys only)
    menu_keys: str = ""  # e.g. "Alt+F, N": the menu path typed with the keyboard


def plain(text: str) -> str:
    """Return a menu text without its mnemonic ampersand and trailing ellipsis."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def mnemonic(text: str) -> str:
    """Return the letter after a single '&' in a menu text ('' when there is none)."""
    match = re.search(r"(?<!&)&([^&\s])", text)
    return match.group(1).upper() if match else ""


def key_text(sequences: Iterable[QKeySequence]) -> str:
    """Return the shortcuts of an action as people read them, e.g. ``Ctrl+Z or Alt+Backspace``."""
    texts = [s.toString(NATIVE) for s in sequences if not s.isEmpty()]
    return " or ".join(dict.fromkeys(texts))


# -- collecting ------------------------------------------------------------------------------
def menu_entries(bar: QMenuBar) -> list[Entry]:
    """Return an entry for every action in the menu bar, submenus included."""
    entries: list[Entry] = []
    for top in bar.actions():
        menu = top.menu()
        if menu is None:
            continue
        letter = mnemonic(top.text())
        entries.extend(_menu(menu, plain(top.text()), f"Alt+{letter}" if letter else ""))
    return entries


def _menu(menu: QMenu, section: str, path: str) -> Iterator[Entry]:
    for action in menu.actions():
        if action.isSeparator() or not action.isVisible():
            continue
        letter = mnemonic(action.text())
        keys_path = f"{path}, {letter}" if path and letter else ""
        if action.menu() is not None:
            yield from _menu(action.menu(), f"{section} ▸ {plain(action.text())}", keys_path)
            continue
        yield Entry(section, plain(action.text()), key_text(action.shortcuts()), keys_path)


def menu_actions(bar: QMenuBar) -> list[QAction]:
    """Return every action in the menu bar (submenus included), separators left out."""
    found: list[QAction] = []

    def walk(menu: QMenu) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu())
            elif not action.isSeparator():
                found.append(action)

    for top in bar.actions():
        if top.menu() is not None:
            walk(top.menu())
    return found


def _normal(key: str) -> str:
    """Return a key as QKeySequence spells it ('←' → 'Left', 'PgDn' → 'PgDown')."""
    key = key.strip()
    for written, spelled in KEY_SPELLINGS.items():
        key = key.replace(written, spelled)
    return QKeySequence(key).toString(NATIVE) or key


def expand_keys(text: str) -> set[str]:
    """Return the single keys a help text names: '1–3' → 1, 2, 3; 'A / Enter' → A, Enter."""
    keys: set[str] = set()
    for part in re.split(r"\s*/\s*|\s+or\s+|,\s*", text):
        if not part:
            continue
        span = re.fullmatch(r"(\d)\s*[–-]\s*(\d)", part)
        if span:
            keys.update(str(n) for n in range(int(span.group(1)), int(span.group(2)) + 1))
            continue
        key = _normal(part)
        keys.update(SAME_KEYS.get(key, (key,)))
    return keys


def _tooltip_keys(tip: str) -> tuple[str, str] | None:
    """Split a tooltip such as 'Skip this example (S)' into its description and keys."""
    match = re.fullmatch(r"(.+?)\s*\(([^()]+)\)\s*", tip or "")
    if not match:
        return None
    return match.group(1), match.group(2)


def labeling_entries(view: Any) -> list[Entry]:
    """Return the labeling keys: the editor's help, then the buttons' keys (skip, previous…)."""
    if view is None:
        return []
    entries = [Entry("Labeling", description.capitalize(), keys)
               for keys, description in view.editor.key_help()]
    covered = covered_keys(entries)
    for button in view.findChildren(QAbstractButton):
        found = _tooltip_keys(button.toolTip())
        # a label button's key is the editor's "1–n" already: list each key once
        if found and button.focusPolicy() == Qt.FocusPolicy.NoFocus \
                and not expand_keys(found[1]) <= covered:
            entries.append(Entry("Labeling", found[0], found[1]))
            covered |= expand_keys(found[1])
    return entries


def review_entries(browser: Any) -> list[Entry]:
    """Return the keys of the Examples tab's "Suspect labels" view (its table's own keys)."""
    if browser is None or not hasattr(browser, "key_help"):
        return []
    return [Entry("Suspect labels", description, keys) for keys, description in browser.key_help()]


def tab_button_entries(window: Any) -> list[Entry]:
    """Return the Alt+letter of every button on the window's tabs (Train, Export bundle…)."""
    tabs = getattr(window, "tabs", None)
    if tabs is None:
        return []
    entries: list[Entry] = []
    for index in range(tabs.count()):
        section = f"{plain(tabs.tabText(index))} tab"
        for button in tabs.widget(index).findChildren(QAbstractButton):
            letter = mnemonic(button.text())
            # "Keep label (K)": the plain key is listed with its view; here only the Alt key
            description = re.sub(r"\s*\([^()]*\)$", "", plain(button.text()))
            entry = Entry(section, description, f"Alt+{letter}")
            if letter and entry not in entries:
                entries.append(entry)
    return entries


def in_use(shortcut: QShortcut) -> bool:
    """Whether a shortcut belongs to a view still shown in the window.

    A closed project's tab pages wait for deletion outside their stack of pages; their keys
    no longer do anything.
    """
    widget = shortcut.parent()
    while widget is not None:
        parent = widget.parent()
        if isinstance(parent, QStackedWidget) and parent.indexOf(widget) < 0:
            return False
        widget = parent
    return True


def other_shortcuts(window: QWidget, covered: set[str]) -> list[Entry]:
    """Return an entry for every QShortcut in the window whose key no entry names yet."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for shortcut in window.findChildren(QShortcut):
        key = shortcut.key().toString(NATIVE)
        if not key or key in covered or key in seen or not in_use(shortcut):
            continue
        seen.add(key)
        parent = shortcut.parent()
        description = shortcut.whatsThis() or (
            f"a key of the {parent.__class__.__name__}" if parent is not None else "")
        entries.append(Entry("Other keys", description, key))
    return entries


def collect(window: Any) -> list[Entry]:
    """Return every entry of the sheet for a main window, in the order shown."""
    entries = menu_entries(window.menuBar())
    views = getattr(window, "views", {}) or {}
    entries += labeling_entries(views.get("label"))
    entries += review_entries(views.get("examples"))
    entries += tab_button_entries(window)
    covered: set[str] = {keys for keys, _description in BUILT_IN}
    for entry in entries:
        covered |= expand_keys(entry.keys)
    entries += other_shortcuts(window, covered)
    entries += [Entry("Anywhere", description, keys) for keys, description in BUILT_IN]
    return entries


def covered_keys(entries: Iterable[Entry]) -> set[str]:
    """Return every single key the entries name (what a test compares with the window)."""
    keys: set[str] = set()
    for entry in entries:
        keys |= expand_keys(entry.keys)
    return keys


# -- the sheet -------------------------------------------------------------------------------
class ShortcutsSheet(QDialog):
    """A window listing every key of the app, grouped by menu and view."""

    def __init__(self, window: Any, parent: QWidget | None = None):
        super().__init__(parent or window)
        self.setWindowTitle("Keyboard shortcuts")
        self.setObjectName("shortcuts_sheet")
        self.entries = collect(window)
        layout = style.padded(QVBoxLayout(self))
        layout.addWidget(style.explanation(
            "Every action has a key. Menu keys: hold Alt and press the underlined letters, "
            "one after the other."))
        self.tree = QTreeWidget()
        self.tree.setObjectName("shortcuts")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Action", "Shortcut", "Through the menu"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        sections: dict[str, QTreeWidgetItem] = {}
        for entry in self.entries:
            section = sections.get(entry.section)
            if section is None:
                section = QTreeWidgetItem([entry.section])
                section.setFirstColumnSpanned(True)
                font = style.font_scaled(self.font(), 1.0, bold=True)
                section.setFont(0, font)
                section.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.tree.addTopLevelItem(section)
                sections[entry.section] = section
            item = QTreeWidgetItem([entry.description, entry.keys, entry.menu_keys])
            section.addChild(item)
        self.tree.expandAll()
        self.tree.setCurrentItem(None)  # nothing looks selected in a sheet that is only read
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        layout.addWidget(self.tree, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        metrics = self.fontMetrics()
        rows = len(self.entries) + len(sections)
        # a tree row is about 1.4 lines of text; room for every row up to 40 of them
        self.resize(metrics.horizontalAdvance("x") * 80,
                    int(metrics.height() * (1.4 * min(rows, 40) + 8)))

    def text(self) -> str:
        """Return the sheet as plain text (one line per entry)."""
        return "\n".join(f"{e.section}: {e.description} — {e.keys or e.menu_keys}"
                         for e in self.entries)
