"""Where user-perceived characters begin and end: extended grapheme clusters (Unicode UAX #29).

A span that ends between "e" and a combining accent, between an emoji and its skin tone, or
inside a flag or a ZWJ family shows the user a broken character and a different word. Token
offsets do that: a normaliser that strips accents leaves the accent out of the token, and an
[UNK] token can stop short of a modifier. Predicted spans are therefore widened to whole
clusters before they are shown or stored (``widen_to_graphemes``).

Standard library only (the torch-free Predictor uses it). The rules are UAX #29's for extended
clusters, with the properties approximated from ``unicodedata`` categories and a few code point
ranges: close enough for every script and emoji sequence in use, without a property table.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Grapheme_Cluster_Break values (and Extended_Pictographic, InCB) this module tells apart.
OTHER, CR, LF, CONTROL, EXTEND, ZWJ, REGIONAL, PREPEND, SPACING_MARK = range(9)
L, V, T, LV, LVT, PICTOGRAPHIC, LINKER, CONSONANT = range(9, 17)

_HANGUL_L = ((0x1100, 0x115F), (0xA960, 0xA97C))
_HANGUL_V = ((0x1160, 0x11A7), (0xD7B0, 0xD7C6))
_HANGUL_T = ((0x11A8, 0x11FF), (0xD7CB, 0xD7FB))
_PREPEND = frozenset((0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x0D4E, 0x110BD, 0x110CD,
                      0x111C2, 0x111C3, 0x11A3A, 0x11A84, 0x11A85, 0x11A86, 0x11A87, 0x11A88,
                      0x11A89, 0x11D46, 0x11F02, *range(0x0600, 0x0606)))
# Thai and Lao SARA AM are letters (Lo) that attach like spacing marks
_SPACING_LETTERS = frozenset((0x0E33, 0x0EB3))
# spacing marks (Mc) that UAX #29 lets stand alone (Myanmar, Tai Tham, Ahom)
_FREE_MARKS = frozenset((0x102B, 0x102C, 0x1038, 0x1062, 0x1063, 0x1064, 0x1083, 0x108F, 0x1A61,
                         0x1A63, 0x1A64, 0xAA7B, 0xAA7D, 0x11720, 0x11721,
                         *range(0x1067, 0x106E), *range(0x1087, 0x108D), *range(0x109A, 0x109D)))
# halfwidth katakana voiced sound marks are letters (Lm) that combine
_EXTENDING_LETTERS = frozenset((0xFF9E, 0xFF9F))
# Indic conjuncts (Unicode 15.1 GB9c): a virama between two consonants joins them, as in
# Devanagari "क्ष". The scripts with InCB=Linker, their virama and their consonant ranges.
_LINKERS = frozenset((0x094D, 0x09CD, 0x0ACD, 0x0B4D, 0x0C4D, 0x0D4D))
_CONSONANTS = ((0x0915, 0x0939), (0x0958, 0x095F), (0x0978, 0x097F), (0x0995, 0x09B9),
               (0x09DC, 0x09DF), (0x09F0, 0x09F1), (0x0A95, 0x0AB9), (0x0AF9, 0x0AF9),
               (0x0B15, 0x0B39), (0x0B5C, 0x0B5F), (0x0B71, 0x0B71), (0x0C15, 0x0C39),
               (0x0C58, 0x0C5A), (0x0D15, 0x0D3A))
# Extended_Pictographic outside the emoji planes' symbol blocks (emoji-data.txt)
_PICTOGRAPHIC_BMP = frozenset((0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x2328, 0x2388,
                               0x23CF, 0x24C2, 0x25B6, 0x25C0, 0x2934, 0x2935, 0x2B50, 0x2B55,
                               0x3030, 0x303D, 0x3297, 0x3299, 0x2B05, 0x2B06, 0x2B07, 0x2B1B,
                               0x2B1C, 0x25AA, 0x25AB, 0x231A, 0x231B, 0x21A9, 0x21AA,
                               *range(0x2194, 0x219A), *range(0x23E9, 0x23F4),
                               *range(0x23F8, 0x23FB), *range(0x25FB, 0x25FF)))


def _in(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= code <= high for low, high in ranges)


@lru_cache(maxsize=4096)
def kind(char: str) -> int:
    """Return the cluster-break class of one character (one of this module's constants)."""
    code = ord(char)
    if 0x20 <= code < 0x7F:
        return OTHER  # printable ASCII: most characters of most texts
    if char == "\r":
        return CR
    if char == "\n":
        return LF
    if code == 0x200D:
        return ZWJ
    if 0x1F1E6 <= code <= 0x1F1FF:
        return REGIONAL
    if 0x1F3FB <= code <= 0x1F3FF or code == 0x200C or 0xE0020 <= code <= 0xE007F:
        return EXTEND  # skin tones, ZWNJ, emoji tag characters
    if code in _LINKERS:
        return LINKER
    if 0xAC00 <= code <= 0xD7A3:
        return LV if (code - 0xAC00) % 28 == 0 else LVT
    if _in(code, _HANGUL_L):
        return L
    if _in(code, _HANGUL_V):
        return V
    if _in(code, _HANGUL_T):
        return T
    if code in _PREPEND:
        return PREPEND
    if code in _SPACING_LETTERS:
        return SPACING_MARK
    if code in _EXTENDING_LETTERS:
        return EXTEND
    category = unicodedata.category(char)
    if category in ("Mn", "Me"):
        return EXTEND  # combining marks, variation selectors
    if category == "Mc":
        return OTHER if code in _FREE_MARKS else SPACING_MARK
    if category in ("Cc", "Cf", "Zl", "Zp"):
        return CONTROL  # also bidi marks such as U+200E: they stand alone
    if category == "Lo" and _in(code, _CONSONANTS):
        return CONSONANT
    if code in _PICTOGRAPHIC_BMP or (0x2600 <= code <= 0x27BF and category == "So") or (
            0x1F000 <= code <= 0x1FAFF and category in ("So", "Cn")) or \
            0x1FC00 <= code <= 0x1FFFD:
        return PICTOGRAPHIC
    return OTHER


_BREAK_AFTER = (CR, LF, CONTROL)
_NO_BREAK_BEFORE = (EXTEND, ZWJ, SPACING_MARK, LINKER)  # LINKERs are combining marks too


def is_boundary(text: str, index: int) -> bool:
    """Tell whether a cluster boundary lies before ``text[index]`` (UAX #29 rules GB1-GB999)."""
    if index <= 0 or index >= len(text):
        return True
    before, after = kind(text[index - 1]), kind(text[index])
    if before == CR and after == LF:
        return False
    if before in _BREAK_AFTER or after in _BREAK_AFTER:
        return True
    if before == L and after in (L, V, LV, LVT):
        return False
    if before in (LV, V) and after in (V, T):
        return False
    if before in (LVT, T) and after == T:
        return False
    if after in _NO_BREAK_BEFORE or before == PREPEND:
        return False
    if after == PICTOGRAPHIC and before == ZWJ:
        return not _pictograph_before_joiner(text, index - 1)
    if after == CONSONANT and before in (LINKER, EXTEND, ZWJ):
        return not _conjunct_before(text, index)
    if before == REGIONAL and after == REGIONAL:
        # flags are pairs: break only after an even run of regional indicators
        run, position = 0, index - 1
        while position >= 0 and kind(text[position]) == REGIONAL:
            run += 1
            position -= 1
        return run % 2 == 0
    return True


def _pictograph_before_joiner(text: str, joiner: int) -> bool:
    # GB11: ExtPict Extend* ZWJ x ExtPict
    position = joiner - 1
    while position >= 0 and kind(text[position]) == EXTEND:
        position -= 1
    return position >= 0 and kind(text[position]) == PICTOGRAPHIC


def _conjunct_before(text: str, index: int) -> bool:
    # GB9c: Consonant [Extend Linker]* Linker [Extend Linker]* x Consonant
    position, linked = index - 1, False
    while position >= 0 and kind(text[position]) in (EXTEND, ZWJ, LINKER):
        linked = linked or kind(text[position]) == LINKER
        position -= 1
    return linked and position >= 0 and kind(text[position]) == CONSONANT


def cluster_start(text: str, index: int) -> int:
    """Return the start of the cluster that holds ``text[index]`` (``index`` on a boundary)."""
    index = max(0, min(index, len(text)))
    while not is_boundary(text, index):
        index -= 1
    return index


def cluster_end(text: str, index: int) -> int:
    """Return the first boundary at or after ``index``."""
    index = max(0, min(index, len(text)))
    while not is_boundary(text, index):
        index += 1
    return index


def widen_to_graphemes(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen the span ``[start, end)`` so that it cuts no user-perceived character."""
    if start >= end:
        return start, end
    return cluster_start(text, start), cluster_end(text, end)


def clusters(text: str) -> list[str]:
    """Split a text into its extended grapheme clusters."""
    pieces, start = [], 0
    for index in range(1, len(text) + 1):
        if is_boundary(text, index):
            pieces.append(text[start:index])
            start = index
    return pieces
