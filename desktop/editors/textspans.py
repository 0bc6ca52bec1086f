"""A read-only text view that selects character ranges and paints highlighted spans.

Every range it takes or gives is in store offsets (code points of the exact text it was given);
its ``OffsetMap`` converts them to and from the document's own positions.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QMouseEvent, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextEdit, QWidget

from annotune.core.errors import AnnotuneError
from annotune.desktop import style
from annotune.desktop.editors.offsets import (
    OffsetMap,
    grapheme_boundaries,
    qt_string,
    word_boundaries,
)


def entity_colour(index: int, alpha: int = 255) -> QColor:
    """Return the highlight colour of the index-th entity type: its label's colour everywhere.

    The label colours (style.label_colour) are made for text on top, in light and dark;
    a lower ``alpha`` only tints (suggestions, answers).
    """
    colour = QColor(style.label_colour(index))
    colour.setAlpha(alpha)
    return colour


# characters that join the letters either side into one word ("Jean-Pierre", "O'Neil", "a_b")
WORD_JOINERS = "_'-"
# Unicode's mandatory breaks between both clusters and words (UAX #29: CR, LF, Newline)
LINE_BREAKS = "\r\n\x0b\x0c\x85\u2028\u2029"
_LINE_BREAK = re.compile(f"[{LINE_BREAKS}]")


def snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a store range to whole words and trim surrounding whitespace and format marks.

    Works on user-perceived characters (grapheme clusters), so "e" + combining accent, a ZWJ
    emoji family or "\\r\\n" is never cut; a cluster is a letter when its first code point
    is alphanumeric. Two letters belong to one word unless Unicode's word rules part them
    (東京に行った is six words, not one); a joiner ("-", "'", "_") between two letters joins
    them, and nothing else.
    """
    start, end = max(0, min(start, end)), min(len(text), max(start, end))
    if start == end:
        return start, end
    # Only the lines holding the range are segmented, so a snap costs what its lines cost,
    # however long the whole text. Unicode breaks clusters and words before and after every
    # line break whatever surrounds it, so the result is the one the whole text would give.
    low = max(text.rfind(char, 0, start) for char in LINE_BREAKS) + 1
    if 0 < low < len(text) and text[low - 1:low + 1] == "\r\n":
        low -= 1  # the range starts inside "\r\n": keep the pair whole
    following = _LINE_BREAK.search(text, end)
    high = following.start() if following else len(text)
    if 0 < high < len(text) and text[high - 1:high + 1] == "\r\n":
        high += 1
    first, last = _snap_within(text[low:high], start - low, end - low)
    return first + low, last + low


def _snap_within(text: str, start: int, end: int) -> tuple[int, int]:
    bounds = grapheme_boundaries(text)
    words = word_boundaries(text)
    # selected clusters: first .. last - 1, the clusters holding the range's ends taken whole
    first = bisect_right(bounds, start) - 1
    last = bisect_left(bounds, end)

    def is_blank(cluster: int) -> bool:
        # spaces, line breaks and invisible format marks (byte-order mark, zero-width space,
        # the direction marks of right-to-left text) never begin or end a span
        char = text[bounds[cluster]]
        return char.isspace() or unicodedata.category(char) == "Cf"

    def letter(cluster: int) -> bool:
        return 0 <= cluster < len(bounds) - 1 and text[bounds[cluster]].isalnum()

    def joiner(cluster: int) -> bool:
        return text[bounds[cluster]] in WORD_JOINERS

    def joined(cluster: int) -> bool:
        """Tell whether a cluster and the one before it are parts of one word."""
        # a joiner joins only between letters: "Jean-Pierre", not the quotes of 'Paris'
        if joiner(cluster - 1):
            return letter(cluster - 2) and letter(cluster)
        if joiner(cluster):
            return letter(cluster - 1) and letter(cluster + 1)
        return letter(cluster - 1) and letter(cluster) and bounds[cluster] not in words

    while first < last and is_blank(first):
        first += 1
    while last > first and is_blank(last - 1):
        last -= 1
    if first == last:
        return bounds[first], bounds[first]
    while first > 0 and joined(first):
        first -= 1
    while last < len(bounds) - 1 and joined(last):
        last += 1
    return bounds[first], bounds[last]


class SpanText(QTextEdit):
    """Plain text, selectable by mouse or Shift+arrows, with coloured spans painted over it.

    Ranges are store offsets: ``text()[start:end]`` is what the person sees selected or painted,
    whatever the text holds (emoji, "\\r\\n", combining accents).
    """

    def __init__(self, parent: QWidget | None = None, size_factor: float = 1.35):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.setAcceptRichText(False)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * size_factor)
        self.setFont(font)
        self.offsets = OffsetMap("")

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        # show the word-snapped range at once, so what is marked is what is seen
        super().mouseReleaseEvent(event)
        start, end = self.selection()
        if start != end:
            snapped = snap_to_words(self.text(), start, end)
            if snapped != (start, end) and snapped[0] < snapped[1]:
                self.select(*snapped)

    def text(self) -> str:
        """Return the text exactly as given (the document's plain text rewrites line breaks)."""
        return self.offsets.text

    def set_text(self, text: str) -> None:
        # the map first: setPlainText moves the cursor, and listeners read it through the map
        self.offsets = OffsetMap(text)
        self.setPlainText(qt_string(text))
        self.moveCursor(QTextCursor.MoveOperation.Start)
        shown = self.document().characterCount() - 1  # less the document's closing break
        if shown != self.offsets.widget_length:
            raise AnnotuneError(
                "The text view changed the length of this text, so spans cannot be placed "
                "on it safely",
                where=f"{text[:40]!r} ({len(text)} characters, {shown} positions shown)",
                hint="Report this text; nothing was saved for it")

    def selection(self) -> tuple[int, int]:
        """Return the selected store range, grown to whole characters."""
        cursor = self.textCursor()
        return self.offsets.range_to_store(cursor.selectionStart(), cursor.selectionEnd())

    def select(self, start: int, end: int) -> None:
        """Select a store range (the cursor ends up at ``end``)."""
        widget_start, widget_end = self.offsets.range_to_widget(start, end)
        if start > end:
            widget_start, widget_end = widget_end, widget_start
        cursor = self.textCursor()
        cursor.setPosition(widget_start)
        cursor.setPosition(widget_end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)

    def clear_selection(self) -> None:
        cursor = self.textCursor()
        cursor.clearSelection()
        self.setTextCursor(cursor)

    def cursor_position(self) -> int:
        """Return the store offset of the text cursor."""
        return self.offsets.to_store(self.textCursor().position())

    def paint_spans(self, spans: Iterable[tuple[int, int, QColor, bool]]) -> None:
        """Highlight (start, end, colour, outlined) store ranges; outlined ones are underlined."""
        selections = []
        for start, end, colour, outlined in spans:
            selection = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            fmt.setBackground(colour)
            if outlined:
                fmt.setFontUnderline(True)
                fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
                fmt.setFontWeight(700)
            selection.format = fmt
            widget_start, widget_end = self.offsets.range_to_widget(start, end)
            cursor = QTextCursor(self.document())
            cursor.setPosition(widget_start)
            cursor.setPosition(widget_end, QTextCursor.MoveMode.KeepAnchor)
            selection.cursor = cursor
            selections.append(selection)
        self.setExtraSelections(selections)
