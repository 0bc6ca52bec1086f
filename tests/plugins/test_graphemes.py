"""Grapheme cluster boundaries: what a span may not cut."""

import random

import pytest

from annotune.plugins.graphemes import clusters, is_boundary, widen_to_graphemes

FAMILY = "👨\u200d👩\u200d👧"  # a ZWJ sequence: one character on screen


@pytest.mark.parametrize("text, expected", [
    ("Jose\u0301", ["J", "o", "s", "e\u0301"]),  # combining acute accent
    ("Zoe\u0308!", ["Z", "o", "e\u0308", "!"]),
    (f"{FAMILY}🍕", [FAMILY, "🍕"]),
    ("👍🏽👍", ["👍🏽", "👍"]),  # skin tone modifier
    ("I ❤️ it", ["I", " ", "❤️", " ", "i", "t"]),  # variation selector 16
    ("🇫🇷🇩🇪🇮", ["🇫🇷", "🇩🇪", "🇮"]),  # regional indicators pair up
    ("🏳️\u200d🌈", ["🏳️\u200d🌈"]),
    ("a\r\nb\n\r", ["a", "\r\n", "b", "\n", "\r"]),  # CRLF is one, LF CR two
    ("\u1112\u1161\u11ab\uac00", ["\u1112\u1161\u11ab", "\uac00"]),  # Hangul jamo, syllable
    ("\uac00\u11a8", ["\uac00\u11a8"]),  # LV + T
    ("नमस्ते", ["न", "म", "स्ते"]),  # Devanagari: virama joins a conjunct
    ("क्षत्रिय", ["क्ष", "त्रि", "य"]),
    ("كتابٌ", ["ك", "ت", "ا", "بٌ"]),  # Arabic tanween
    ("שָׁלוֹם", ["שָׁ", "ל", "וֹ", "ם"]),  # Hebrew points
    ("กำลัง", ["กำ", "ลั", "ง"]),  # Thai SARA AM attaches
    ("\u0600\u0661", ["\u0600\u0661"]),  # Arabic number sign prepends
    ("a\u200eb", ["a", "\u200e", "b"]),  # a bidi mark stands alone
    ("東京", ["東", "京"]),
    ("", []),
])
def test_clusters_of_real_text(text, expected):
    assert clusters(text) == expected
    assert "".join(clusters(text)) == text


def test_widen_moves_both_edges_out_to_cluster_boundaries():
    text = "Jose\u0301 met 👍🏽 and 🇫🇷 in " + FAMILY
    assert widen_to_graphemes(text, 0, 4) == (0, 5)  # the accent belongs to the name
    thumbs = text.index("👍")
    assert widen_to_graphemes(text, thumbs, thumbs + 1) == (thumbs, thumbs + 2)
    flag = text.index("🇫")
    assert widen_to_graphemes(text, flag + 1, flag + 2) == (flag, flag + 2)
    family = text.index(FAMILY)
    assert widen_to_graphemes(text, family + 2, family + 3) == (family, len(text))
    assert widen_to_graphemes(text, 6, 9) == (6, 9)  # "met" is already whole
    assert widen_to_graphemes(text, 3, 3) == (3, 3)  # empty stays empty


def test_text_edges_are_always_boundaries():
    assert is_boundary("\u0301abc", 0) and is_boundary("abc\u200d", 4)
    assert is_boundary("x", -3) and is_boundary("x", 9)


# Characters real texts mix: Latin with accents, emoji sequences, flags, CRLF, Hangul,
# Devanagari, Arabic, Hebrew, Thai, CJK and bidi marks. Viramas stay out: the regex module
# joins any virama to a following consonant, even after an emoji (GB9c asks for a consonant
# before it), and the conjunct cases above check that rule.
POOL = [*"aZ9 .,", "\r", "\n", "\t", "\u0301", "\u0308", "\u200d", "\u200c", "\ufe0f",
        "\ufe0e", "🏽", "🏻", "👨", "👩", "👧", "❤", "🔥", "🏳", "🌈", "🇫", "🇷", "🇩", "🇪",
        "\u1100", "\u1161", "\u11a8", "각", "가", "न", "म", "स", "त", "े", "ि", "ष",
        "\u0600", "ا", "ل", "\u0651", "\u064c", "ש", "\u05c1", "\u05b8", "\u200e", "\u200f",
        "\ufeff", "ำ", "ก", "\u0e48", "東", "京", "🍕", "👍", "\u20e3", "#",
        "\U000e0067", "\U000e007f", "🏴", "\u0903", "\u093e"]


def test_boundaries_agree_with_the_regex_module_on_mixed_text():
    regex = pytest.importorskip("regex", reason="the regex module (\\X) is the reference")
    rng = random.Random(4)
    for _ in range(20_000):
        text = "".join(rng.choice(POOL) for _ in range(rng.randint(1, 10)))
        assert clusters(text) == regex.findall(r"\X", text), ascii(text)
