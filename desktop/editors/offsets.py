"""Store offsets <-> text-widget positions, and the grapheme clusters a selection must keep whole.

The store counts code points of the exact stored string (Python str indices). A QTextDocument
filled by ``setPlainText`` counts differently: UTF-16 code units (a character outside the Basic
Multilingual Plane, such as 🍕, takes two positions) and one position per paragraph break,
where "\\r\\n" becomes a single break. Every other character keeps one position each way
("\\n", a lone "\\r", U+FDD0 and U+FDD1 turn into the break U+2029 in place; tabs, form feeds,
U+2028 and U+2029 stay as they are). The span editors convert at the widget boundary with an
``OffsetMap`` and nowhere else, and hand texts to Qt through ``qt_string``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import cache, lru_cache

from PySide6.QtCore import QTextBoundaryFinder

# The only places where the two counts differ: two positions for one code point, or one
# position for two code points.
_UNEVEN = re.compile("[\U00010000-\U0010ffff]|\r\n")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# what PySide takes for a byte-order mark at the start of a string
BYTE_ORDER_MARKS = ("\ufeff", "\ufffe")


@cache
def _strings_lose_a_leading_mark() -> bool:
    """Tell whether this PySide drops a leading byte-order mark on the way into Qt."""
    finder = QTextBoundaryFinder(QTextBoundaryFinder.BoundaryType.Grapheme, "\ufeffx")
    return finder.string() == "x"


def qt_string(text: str) -> str:
    """Return the string to hand to Qt so that Qt receives exactly ``text``.

    PySide reads a leading U+FEFF as a byte-order mark and drops it, and a leading U+FFFE as
    one that swaps the bytes of everything after it (``"\\ufffeab"`` arrives as ``"愀戀"``).
    A sacrificial U+FEFF in front is taken as the mark instead, and the text arrives whole.
    """
    if text.startswith(BYTE_ORDER_MARKS) and _strings_lose_a_leading_mark():
        return "\ufeff" + text
    return text


def utf16_length(char: str) -> int:
    """Return how many UTF-16 code units one code point takes."""
    return 2 if ord(char) > 0xFFFF else 1


class OffsetMap:
    """Convert store offsets of one text to the positions of a widget showing it, and back.

    Offsets that fall inside a character on the other side (the middle of a surrogate pair in
    the widget, between "\\r" and "\\n" in the store) round outwards: a range start moves to
    the character's start, a range end to its end, so a range always covers whole characters
    (an empty range stays empty: a bare cursor never becomes a selection).
    """

    def __init__(self, text: str):
        self.text = text
        # for each uneven character, in order: where it starts and ends on either side
        self._store_starts: list[int] = []
        self._store_ends: list[int] = []
        self._widget_starts: list[int] = []
        self._widget_ends: list[int] = []
        shift = 0  # widget position minus store offset after the characters seen so far
        for match in _UNEVEN.finditer(text):
            start, end = match.span()
            widget_width = 1 if match.group() == "\r\n" else 2
            self._store_starts.append(start)
            self._store_ends.append(end)
            self._widget_starts.append(start + shift)
            shift += widget_width - (end - start)
            self._widget_ends.append(end + shift)
        self.widget_length = len(text) + shift

    def to_widget(self, offset: int, *, end: bool = False) -> int:
        """Return the widget position of a store offset (``end``: round up inside a character)."""
        offset = max(0, min(offset, len(self.text)))
        return _convert(offset, end, self._store_starts, self._store_ends,
                        self._widget_starts, self._widget_ends)

    def to_store(self, position: int, *, end: bool = False) -> int:
        """Return the store offset of a widget position (``end``: round up inside a character)."""
        position = max(0, min(position, self.widget_length))
        return _convert(position, end, self._widget_starts, self._widget_ends,
                        self._store_starts, self._store_ends)

    def range_to_widget(self, start: int, end: int) -> tuple[int, int]:
        """Return the widget range of a store range, grown to whole characters."""
        start, end = min(start, end), max(start, end)
        widget_start = self.to_widget(start)
        return widget_start, self.to_widget(end, end=True) if end > start else widget_start

    def range_to_store(self, start: int, end: int) -> tuple[int, int]:
        """Return the store range of a widget range, grown to whole characters."""
        start, end = min(start, end), max(start, end)
        store_start = self.to_store(start)
        return store_start, self.to_store(end, end=True) if end > start else store_start


def _convert(value: int, round_up: bool, starts: list[int], ends: list[int],
             other_starts: list[int], other_ends: list[int]) -> int:
    index = bisect_right(starts, value) - 1  # the last uneven character starting at or before
    if index < 0:
        return value
    if value == starts[index]:
        return other_starts[index]
    if value < ends[index]:
        return other_ends[index] if round_up else other_starts[index]
    return value - ends[index] + other_ends[index]


def grapheme_boundaries(text: str) -> tuple[int, ...]:
    """Return the store offsets where a user-perceived character starts, and len(text).

    Qt's own rules (extended grapheme clusters: "e" + combining accent, ZWJ emoji sequences,
    flags, "\\r\\n"), so the editors keep whole exactly what the text cursor steps over.
    """
    return _boundaries(text, QTextBoundaryFinder.BoundaryType.Grapheme)


@lru_cache(maxsize=8)
def word_boundaries(text: str) -> frozenset[int]:
    """Return the store offsets of Unicode word boundaries (UAX #29, as Qt finds them).

    Scripts written without spaces get boundaries inside a run of letters: between the
    ideographs of 東京に行った, at Thai dictionary words.
    """
    return frozenset(_boundaries(text, QTextBoundaryFinder.BoundaryType.Word))


@lru_cache(maxsize=8)
def _boundaries(text: str, kind: QTextBoundaryFinder.BoundaryType) -> tuple[int, ...]:
    finder = QTextBoundaryFinder(kind, qt_string(text))
    boundaries = [0]
    if not _ASTRAL.search(text):  # then Qt's UTF-16 units are the code points
        while (position := finder.toNextBoundary()) > 0:
            boundaries.append(position)
    else:
        offset = units = 0
        while (position := finder.toNextBoundary()) > 0:
            while units < position and offset < len(text):
                units += utf16_length(text[offset])
                offset += 1
            boundaries.append(offset)
    if boundaries[-1] != len(text):
        boundaries.append(len(text))
    return tuple(boundaries)
