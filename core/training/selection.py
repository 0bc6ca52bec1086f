"""How sure a validation score is, and which epoch to keep without chasing noise.

A score on a few hundred validation examples moves by several points between two epochs by
chance alone (RTE: 249 pairs, one standard error is about 3 points of accuracy). Each epoch's
main metric is therefore bootstrapped: the task's own ``metrics`` on ``draws`` resamples of the
validation examples, the same resamples for every epoch, so two epochs are compared on paired
draws. The run record states the kept epoch's standard error and 95 % interval, and a later
epoch replaces the kept one only when it scores higher by more than one standard error of the
difference; within that noise the epoch with the lower validation loss is kept (the old rule's
tie-break, now applied to every tie that chance cannot tell apart).

Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotune.core.score_interval import edge_interval
from annotune.core.tasks import Annotation, Prediction, Task, TaskSettings

DRAWS = 200  # bootstrap resamples per epoch
# Examples per resample at most. Scoring costs the metric's time on every resample, so a
# large validation set is resampled at this size and the spread scaled by sqrt(m / n) (the
# m-out-of-n bootstrap; the standard error of an average shrinks with the square root of its
# examples): 200 draws of 1,000 cost about as much as scoring 200,000 examples once.
SUBSAMPLE = 1000
NOISE = 1.0  # standard errors of the difference a later epoch must win by
Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval


@dataclass(frozen=True)
class Resamples:
    """Bootstrap resamples of one validation set: (draws, m) indices and the spread's scale."""

    indices: np.ndarray
    examples: int  # n, the validation set's size

    @property
    def scale(self) -> float:
        """Return sqrt(m / n): what turns the spread of m-example draws into n examples'."""
        return math.sqrt(self.indices.shape[1] / max(self.examples, 1))


def resamples(n: int, seed: int) -> Resamples:
    """Return bootstrap resamples of n examples, fixed by ``seed`` (the same every epoch)."""
    size = min(n, SUBSAMPLE)
    rng = np.random.default_rng([seed, n])
    return Resamples(rng.integers(0, max(n, 1), size=(DRAWS, size)), n)


def bootstrap(task: Task, metric: str, predictions: Sequence[Prediction],
              annotations: Sequence[Annotation], settings: TaskSettings,
              plan: Resamples, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Return ``metric`` of the task's metrics on each resample (one value per draw).

    ``should_stop`` is asked between draws (a training's Stop must not wait for them); the
    draws not made are NaN.
    """
    values = np.full(len(plan.indices), np.nan, dtype=np.float64)
    for row, chosen in enumerate(plan.indices):
        if should_stop is not None and should_stop():
            break
        picked = chosen.tolist()
        scores = task.metrics([predictions[i] for i in picked],
                              [annotations[i] for i in picked], settings)
        values[row] = float(scores[metric])
    return values


def uncertainty(metric: str, score: float, values: np.ndarray, plan: Resamples,
                scale: float = 1.0) -> dict[str, Any]:
    """Describe a score's spread: its standard error and a 95 % interval.

    The interval is the draws' 2.5th and 97.5th percentiles when every draw has all the
    examples, else the score plus or minus 1.96 standard errors. A score at the edge of its
    range (``[0, scale]``: every example right, or every one wrong) gets the exact binomial
    interval instead and no standard error: every draw scores the same there, and a spread
    of zero would claim a certainty the examples cannot give (core/score_interval.py).
    """
    finite = values[np.isfinite(values)]
    record: dict[str, Any] = {"metric": metric, "standard_error": None, "low": None,
                              "high": None, "examples": plan.examples,
                              "draws": len(values), "method": "bootstrap"}
    if not math.isfinite(score):
        return record
    edge = edge_interval(score, plan.examples, scale)
    if edge is not None:
        record.update(low=round(edge[0], 6), high=round(edge[1], 6),
                      method=f"exact binomial: {'every' if score else 'no'} example right")
        return record
    if len(finite) < 2:
        return record
    error = float(finite.std(ddof=1)) * plan.scale
    if plan.scale == 1.0:
        low, high = (float(v) for v in np.percentile(finite, [2.5, 97.5]))
    else:
        low, high = score - Z95 * error, score + Z95 * error
        record["method"] = f"bootstrap of {plan.indices.shape[1]:,} examples, scaled"
    record.update(standard_error=round(error, 6), low=round(float(low), 6),
                  high=round(float(high), 6))
    return record


@dataclass
class Candidate:
    """One evaluated epoch: its main metric, validation loss and bootstrap draws."""

    epoch: int
    score: float
    loss: float | None
    draws: np.ndarray


class EpochChoice:
    """Keep the best epoch so far, replacing it only on a win larger than chance explains."""

    def __init__(self, scale: float = 1.0, noise: float = NOISE):
        self.scale = scale  # Resamples.scale: the draws' spread in n examples' terms
        self.noise = noise
        self.kept: Candidate | None = None

    def consider(self, candidate: Candidate) -> tuple[bool, str]:
        """Return whether ``candidate`` replaces the kept epoch, and why, in words."""
        kept = self.kept
        if math.isnan(candidate.score):
            return False, "its score is not a number"
        if kept is None:
            self.kept = candidate
            return True, "first scored epoch"
        difference = candidate.score - kept.score
        paired = candidate.draws - kept.draws
        paired = paired[np.isfinite(paired)]
        error = float(paired.std(ddof=1)) * self.scale if len(paired) > 1 else 0.0
        margin = self.noise * error
        if difference > margin:
            verdict = (True, f"higher by {difference:.4g}, more than the noise ({margin:.4g})")
        elif difference < -margin:
            verdict = (False, f"lower by {-difference:.4g}, more than the noise ({margin:.4g})")
        elif _lower(candidate.loss, kept.loss):
            verdict = (True, f"within the noise of epoch {kept.epoch} ({difference:+.4g}, "
                             f"noise {margin:.4g}) with a lower validation loss")
        else:
            verdict = (False, f"within the noise of epoch {kept.epoch} ({difference:+.4g}, "
                              f"noise {margin:.4g}) without a lower validation loss")
        if verdict[0]:
            self.kept = candidate
        return verdict


def _lower(loss: float | None, than: float | None) -> bool:
    return loss is not None and than is not None and loss < than
