"""Read span offsets that files state in another unit than Python's characters.

annotune counts offsets in Unicode code points (Python ``str`` indices). Tools written in
JavaScript (Label Studio, browser annotators) count UTF-16 code units instead, in which every
character outside the Basic Multilingual Plane (🍕, most emoji, rare CJK) counts twice, so
each such character before a span shifts it by one. The two readings agree on texts without
those characters; where they differ, the text a file gives for a span or an answer says which
reading is meant, and only a reading that reproduces that text is ever used.

Standard library only.
"""

from __future__ import annotations

CHARACTERS = "characters"
UTF16 = "utf-16"
UTF16_NOTE = ("span offsets counted in UTF-16 code units (as JavaScript tools count them) "
              "were converted to characters")
REPAIR_WINDOW = 2  # characters; the published SQuAD off-by-one answers are within this


def needs_utf16_care(text: str) -> bool:
    """Tell whether UTF-16 offsets into ``text`` differ from character offsets anywhere."""
    # A lone surrogate is counted, not refused: the import refuses such rows with their line
    # later, and this test must not fail first with an encoder error.
    return not text.isascii() and any(ord(char) > 0xFFFF for char in text)


class Utf16Index:
    """Map UTF-16 code unit offsets of one text to character offsets."""

    def __init__(self, text: str):
        self.text = text
        self._chars: dict[int, int] = {}
        units = 0
        for index, char in enumerate(text):
            self._chars[units] = index
            units += 2 if ord(char) > 0xFFFF else 1
        self._chars[units] = len(text)

    def char(self, unit: object) -> int | None:
        """Return the character offset at a code unit offset; None inside a pair or outside."""
        if isinstance(unit, bool) or not isinstance(unit, int):
            return None
        return self._chars.get(unit)

    def span(self, start: object, end: object) -> tuple[int, int] | None:
        """Return a [start, end) span in characters, or None when it cannot be converted."""
        first, last = self.char(start), self.char(end)
        return None if first is None or last is None else (first, last)


def cut(text: str, start: object, end: object) -> str | None:
    """Return ``text[start:end]`` for integer offsets inside the text, else None."""
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (start, end)):
        return None
    assert isinstance(start, int) and isinstance(end, int)
    if not 0 <= start <= end <= len(text):
        return None
    return text[start:end]


def utf16_reading(text: str, start: object, end: object) -> tuple[int, int] | None:
    """Return the character span that UTF-16 offsets denote, when it differs from theirs."""
    if not needs_utf16_care(text):
        return None
    span = Utf16Index(text).span(start, end)
    return None if span is None or span == (start, end) else span


def answer_start(context: str, text: str, start: int) -> tuple[int, str | None] | None:
    """Find the character start of an answer stated as ``text`` at ``start``.

    Returns ``(start, how)``: ``how`` is None when the stated offset is right, ``"utf-16"``
    when it counts UTF-16 code units, ``"repaired"`` when the text lies within
    ``REPAIR_WINDOW`` characters of it (SQuAD's own off-by-one answers); None when none of
    these readings finds the text.
    """
    if start >= 0 and context[start:start + len(text)] == text:
        return start, None
    if needs_utf16_care(context):
        converted = Utf16Index(context).char(start)
        if converted is not None and context[converted:converted + len(text)] == text:
            return converted, UTF16
    for distance in range(1, REPAIR_WINDOW + 1):
        for candidate in (start - distance, start + distance):
            if candidate >= 0 and context[candidate:candidate + len(text)] == text:
                return candidate, "repaired"
    return None
