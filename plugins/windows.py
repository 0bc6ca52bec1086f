"""Cut a long token sequence into overlapping windows (NER and classification share the rule)."""

from __future__ import annotations


def window_starts(n_tokens: int, window: int, stride: int) -> list[int]:
    """Return the first token of each window so that every token lies in at least one.

    ``stride`` tokens are shared by consecutive windows (the last window may share more, as it
    ends at the last token); a stride that leaves no room to move on (``stride >= window``,
    like the default 128 with max_length 128) shares a quarter of the window.
    """
    overlap = stride if 0 <= stride < window else window // 4
    step = max(1, window - overlap)
    starts = [0]
    while starts[-1] + window < n_tokens:
        # the last window ends at the last token, so it is full and its tokens get context
        starts.append(min(starts[-1] + step, n_tokens - window))
    return starts
