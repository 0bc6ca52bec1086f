"""Store offsets <-> text-widget positions, checked against a real QTextDocument."""

from __future__ import annotations

import random

import pytest

from annotune.core.errors import AnnotuneError
from annotune.desktop.editors import textspans
from annotune.desktop.editors.offsets import OffsetMap, grapheme_boundaries
from annotune.desktop.editors.textspans import SpanText, entity_colour, snap_to_words

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧
# pieces of text that Qt counts or rewrites differently from Python, and some that it does not
PIECES = ["a", "Z", "7", " ", "\t", "\r\n", "\r", "\n", "\u2028", "\u2029", "\f", "\x0b",
          "\x00", "\ufeff", "\ufffe", "\u00a0", "\ufdd0", "\ufdd1", "🍕", FAMILY, "e\u0301",
          "東", "京", "に", "ש", "م", "\u200f", "\U0001f1eb\U0001f1f7", "\U0010ffff", "-", "'"]
# what the document holds for a store character (it draws paragraph breaks as U+2029)
BREAKS = {"\r\n": "\u2029", "\n": "\u2029", "\r": "\u2029", "\ufdd0": "\u2029",
          "\ufdd1": "\u2029"}


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = ["", "\r\n", "🍕", "\r\r\n\n", "a\r\n🍕\r\nb", "I 🍕🍕 love Paris now",
             "\ufeffParis", "\ufffeab", "\ufffe🍕", "\ufeff\ufeff🍕"]
    texts += ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 24)))
              for _ in range(count)]
    return texts


def _store_boundaries(text: str) -> list[int]:
    """Return every code point boundary that is a character boundary (not inside "\\r\\n")."""
    return [i for i in range(len(text) + 1)
            if not (0 < i < len(text) and text[i - 1] == "\r" and text[i] == "\n")]


def _units(text: str) -> bytes:
    return text.encode("utf-16-le")


def test_store_to_widget_to_store_is_the_identity_on_character_boundaries(qtbot):
    view = SpanText()
    qtbot.addWidget(view)
    for text in _texts(count=300, seed=7):
        view.set_text(text)  # the widget's own path into the document
        offsets = view.offsets
        for offset in _store_boundaries(text):
            for end in (False, True):
                back = offsets.to_store(offsets.to_widget(offset, end=end), end=end)
                assert back == offset, (repr(text), offset, end)
        # the document's positions: one per UTF-16 unit, never inside a surrogate pair
        widget, position = [0], 0
        for char in view.document().toRawText():
            position += len(_units(char)) // 2
            widget.append(position)
        assert widget[-1] == offsets.widget_length == view.document().characterCount() - 1
        for position in widget:
            for end in (False, True):
                back = offsets.to_widget(offsets.to_store(position, end=end), end=end)
                assert back == position, (repr(text), position, end)


def test_each_stored_character_lands_on_itself_in_the_document(qtbot):
    view = SpanText()
    qtbot.addWidget(view)
    for text in _texts(count=300, seed=11):
        view.set_text(text)
        shown = _units(view.document().toRawText())
        bounds = _store_boundaries(text)
        for start, end in zip(bounds, bounds[1:], strict=False):
            stored = text[start:end]
            widget_start, widget_end = view.offsets.range_to_widget(start, end)
            assert shown[2 * widget_start:2 * widget_end] == _units(BREAKS.get(stored, stored)), \
                (repr(text), start)


def test_offsets_inside_a_character_round_outwards_to_whole_characters():
    text = "a🍕\r\nb"  # store: a 🍕 \r \n b   widget: a <hi lo> <break> b
    offsets = OffsetMap(text)
    assert offsets.widget_length == 5
    assert offsets.range_to_store(2, 2) == (1, 1)  # a range starting inside the pizza
    assert offsets.range_to_store(2, 3) == (1, 2)
    assert offsets.range_to_store(0, 2) == (0, 2)  # ending inside it takes the whole pizza
    assert offsets.range_to_store(4, 2) == (1, 4)  # reversed ranges are ordered
    assert offsets.range_to_widget(3, 4) == (3, 4)  # from inside "\r\n": the whole break
    assert offsets.range_to_widget(2, 3) == (3, 4)
    assert offsets.to_widget(99) == 5 and offsets.to_store(-3) == 0  # clamped


def test_snapping_keeps_user_perceived_characters_whole():
    text = f"Jose\u0301 and {FAMILY} went to 東京に行った\r\nnow"
    assert snap_to_words(text, 0, 3) == (0, 5)  # "Jos" grows to "José" with its accent
    family = text.index(FAMILY)
    assert snap_to_words(text, family, family + 1) == (family, family + len(FAMILY))
    assert snap_to_words(text, family + 3, family + 4) == (family, family + len(FAMILY))
    tokyo = text.index("東京")
    assert snap_to_words(text, tokyo, tokyo + 2) == (tokyo, tokyo + 2)  # not the whole clause
    assert snap_to_words(text, tokyo + 1, tokyo + 2) == (tokyo + 1, tokyo + 2)
    crlf = text.index("\r\n")
    assert snap_to_words(text, crlf + 1, crlf + 4) == (crlf + 2, crlf + 5)  # "\nno": "now"
    assert snap_to_words("Jean-Pierre O'Neil", 2, 6) == (0, 11)
    assert snap_to_words("Jean-Pierre O'Neil", 12, 13) == (12, 18)
    quoted = "she said 'Paris' to New Orleans' mayor"
    assert snap_to_words(quoted, 11, 13) == (10, 15)  # the quotes are no part of the word
    assert snap_to_words(quoted, 24, 26) == (24, 31)
    assert snap_to_words("a \r\n b", 1, 5) == (5, 5)  # only spaces and a break: nothing


def test_snapping_in_a_long_text_matches_snapping_the_whole_of_it():
    """Only the lines around the selection are segmented; the result must not depend on it."""
    rng = random.Random(3)
    long_word = "x" * 700
    zalgo = "e" + "\u0301" * 300  # one cluster
    pieces = PIECES + ["Paris", "Jean-Pierre", " ", " ", long_word, zalgo, "\u0085"]
    text = "".join(rng.choice(pieces) for _ in range(3000))
    crlf = [i for i in range(len(text)) if text.startswith("\r\n", i)]
    ranges = [sorted(rng.sample(range(len(text) + 1), 2)) for _ in range(10)]
    ranges += [(i, i + rng.randint(1, 9)) for i in rng.sample(range(len(text)), 100)]
    ranges += [(i, i + 1) for i in (text.index(long_word) + 350, text.index(zalgo) + 150)]
    ranges += [(i + 1, i + 4) for i in rng.sample(crlf, 50)]  # from inside "\r\n"
    ranges += [(i - 3, i + 1) for i in rng.sample(crlf, 50)]  # to inside it
    whole = [textspans._snap_within(text, start, end) for start, end in ranges]
    assert [snap_to_words(text, start, end) for start, end in ranges] == whole


def test_grapheme_boundaries_count_store_offsets():
    text = f"🍕e\u0301{FAMILY}\r\n🇫🇷x"
    assert grapheme_boundaries(text) == (0, 1, 3, 3 + len(FAMILY), 5 + len(FAMILY),
                                         7 + len(FAMILY), 8 + len(FAMILY))


def test_span_text_speaks_store_offsets(qtbot):
    """The try-it view paints predicted spans through the same widget."""
    view = SpanText()
    qtbot.addWidget(view)
    text = "I 🍕🍕 love\r\nParis now"
    view.set_text(text)
    assert view.text() == text and view.toPlainText() != text  # the document rewrote "\r\n"
    start = text.index("Paris")
    view.paint_spans([(start, start + 5, entity_colour(0), False)])
    assert [s.cursor.selectedText() for s in view.extraSelections()] == ["Paris"]
    view.select(start, start + 5)
    assert view.selection() == (start, start + 5)
    assert view.textCursor().selectedText() == "Paris"
    assert view.cursor_position() == start + 5


def test_a_text_the_view_would_shift_is_refused(qtbot, monkeypatch):
    class Miscounting(OffsetMap):
        def __init__(self, text: str):
            super().__init__(text)
            self.widget_length += 1

    monkeypatch.setattr(textspans, "OffsetMap", Miscounting)
    view = SpanText()
    qtbot.addWidget(view)
    with pytest.raises(AnnotuneError, match="cannot be placed"):
        view.set_text("🍕 Paris")
