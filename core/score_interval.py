"""What a score on n validation examples can claim when it sits at the edge of its range.

A bootstrap draws the validation examples again with replacement and scores each draw; its
spread is the score's uncertainty. When the model is right on every example (or wrong on
every one), every draw scores the same, and the bootstrap reports an interval of zero width:
"F1 1.0000 ±0.0000" on 20 examples, as if 20 examples proved a perfect model. They do not:
a model wrong on one text in six still gets all of 20 right one time in forty. Where a
score sits at its edge the interval is the exact binomial one (Clopper–Pearson) for n of n
(or 0 of n): at 95 %, 20 of 20 right means at least 0.832, 200 of 200 at least 0.982.

Numpy-free and Qt-free: training, the learning curve, the command line and the desktop all
read it.
"""

from __future__ import annotations

import math

CONFIDENCE = 0.95


def edge_interval(score: float, examples: int, scale: float = 1.0,
                  confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Return the exact interval of a score at the top or bottom of ``[0, scale]``.

    None when the score lies strictly inside its range (the bootstrap's interval stands) or
    there is no example to speak of.
    """
    if examples < 1 or not math.isfinite(score) or scale <= 0:
        return None
    # Clopper–Pearson for x = n: the lower end solves p**n = (1 − confidence) / 2
    reach = scale * ((1.0 - confidence) / 2.0) ** (1.0 / examples)
    tolerance = 1e-9 * scale
    if abs(score - scale) <= tolerance:
        return reach, scale
    if abs(score) <= tolerance:
        return 0.0, scale - reach
    return None


def widened(low: float | None, high: float | None, score: float, examples: int,
            scale: float = 1.0) -> tuple[float | None, float | None, bool]:
    """Return ``(low, high, widened)``: a bootstrap interval, made exact at an edge score."""
    edge = edge_interval(score, examples, scale)
    if edge is None:
        return low, high, False
    return (min(edge[0], low) if low is not None else edge[0],
            max(edge[1], high) if high is not None else edge[1], True)
