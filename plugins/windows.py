"""Cut a long token sequence into overlapping windows: one rule for NER, QA and classification."""

from __future__ import annotations


def window_starts(n_tokens: int, window: int, stride: int, *, most_shared: int | None = None,
                  flush_end: bool = True) -> list[int]:
    """Return the first token of each window so that every token lies in at least one.

    ``stride`` tokens are shared by consecutive windows. Without ``most_shared``, a stride that
    leaves no room to move on (``stride >= window``, like the default 128 with max_length 128,
    or a negative one) shares a quarter of the window; with it, the overlap is cut to at most
    ``most_shared`` tokens (question answering: half a window, so a long context needs a
    bounded number of windows whatever the settings).

    ``flush_end``: the last window ends at the last token, so it is full and its tokens get
    context (it may then share more than ``stride``). Without it the windows step on evenly and
    the last may be short: SQuAD's doc-stride windows, the ones QA models are trained on.
    """
    if window < 1:
        raise ValueError(f"a window holds at least one token, not {window}")
    if most_shared is None:
        overlap = stride if 0 <= stride < window else window // 4
    else:
        overlap = min(max(stride, 0), most_shared)
    step = max(1, window - overlap)
    starts = [0]
    while starts[-1] + window < n_tokens:
        following = starts[-1] + step
        starts.append(min(following, n_tokens - window) if flush_end else following)
    return starts
