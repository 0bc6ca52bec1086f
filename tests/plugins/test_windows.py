"""The one window rule NER, classification and question answering cut long texts with."""

from __future__ import annotations

import pytest

from annotune.plugins.windows import window_starts

QA = {"flush_end": False}  # question answering also passes most_shared=window // 2


def _covered(starts: list[int], n: int, window: int) -> set[int]:
    return {token for start in starts for token in range(start, min(start + window, n))}


@pytest.mark.parametrize("rule", [{}, QA], ids=["flush", "qa"])
def test_short_texts_and_exact_fits_take_one_window(rule):
    shared = {"most_shared": 4} if rule else {}
    for n in (0, 1, 7, 8):
        assert window_starts(n, 8, 2, **rule, **shared) == [0]
    # one token too many: a second window, flush with the end or a stride on
    assert window_starts(9, 8, 2, **rule, **shared) == ([0, 6] if rule else [0, 1])


def test_the_last_window_ends_flush_with_the_text_unless_asked_otherwise():
    assert window_starts(21, 8, 2) == [0, 6, 12, 13]  # full last window, more shared
    assert window_starts(21, 8, 2, most_shared=4, flush_end=False) == [0, 6, 12, 18]
    assert window_starts(20, 8, 2) == window_starts(20, 8, 2, flush_end=False) == [0, 6, 12]


def test_a_stride_as_large_as_the_window_still_moves_on():
    # no cap: a quarter of the window is shared; with a cap: at most that many tokens
    assert window_starts(20, 8, 8) == [0, 6, 12]
    assert window_starts(20, 8, 128) == [0, 6, 12]
    assert window_starts(100, 50, 128, most_shared=25, flush_end=False) == [0, 25, 50]
    assert window_starts(20, 8, -3) == [0, 6, 12]  # a negative stride cannot go backwards
    assert window_starts(20, 8, -3, most_shared=4) == [0, 8, 12]


def test_a_stride_smaller_than_the_window_shares_exactly_that_many_tokens():
    starts = window_starts(40, 10, 3, flush_end=False)
    assert starts == [0, 7, 14, 21, 28, 35]
    assert all(b - a == 7 for a, b in zip(starts, starts[1:], strict=False))
    assert window_starts(40, 10, 0) == [0, 10, 20, 30]


@pytest.mark.parametrize("most_shared", [None, 0, 3, 64])
@pytest.mark.parametrize("flush_end", [True, False])
def test_every_token_lies_in_a_window_and_windows_move_forward(most_shared, flush_end):
    for n in range(0, 70):
        for window, stride in ((8, 2), (5, 0), (1, 0), (16, 128), (7, 6), (3, -1)):
            starts = window_starts(n, window, stride, most_shared=most_shared,
                                   flush_end=flush_end)
            assert _covered(starts, n, window) == set(range(n)), (n, window, stride)
            assert starts == sorted(set(starts)) and starts[0] == 0
            assert all(start + window <= max(n, window) for start in starts) or not flush_end


def test_a_window_must_hold_a_token():
    with pytest.raises(ValueError, match="at least one token"):
        window_starts(10, 0, 0)
