"""Whether labeling more is worth it: a run's score at 25, 50, 75 and 100 % of the labels.

The run's configuration is trained again on stratified, nested subsets of the project's
labeled training examples (each subset holds the smaller ones, and every label keeps its
share) and every point is scored on the same validation examples, so the points differ
only by how many labels they saw. The uncertainty comes from a bootstrap over the
validation examples, paired across points: the gain of the last quarter is judged on the
same resampled examples for both of its points, which is far tighter than two separate
intervals would suggest.

This module holds the arithmetic, the verdict and the stored curve; it imports neither torch
nor Qt (the desktop reads curves with it). core/training/learning_curve_job.py trains the
points in a child process.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annotune.core.errors import AnnotuneError
from annotune.core.score_interval import widened

FRACTIONS = (0.25, 0.5, 0.75, 1.0)
BOOTSTRAP_SAMPLES = 300  # resamples of the validation examples; enough for a 95 % interval
INTERVAL = 95  # percent
# A gain whose optimistic end stays below one point is not worth a quarter more labels.
WORTHWHILE_POINTS = 1.0
MIN_TRAIN_EXAMPLES = 20  # below this the quarter subsets hold a handful of examples each
FILE_NAME = "learning_curve.json"
FORMAT = 1


def nested_subsets(items: Sequence[tuple[Any, Mapping[str, Any]]], task: Any,
                   fractions: Sequence[float] = FRACTIONS, seed: int = 42) -> list[list[int]]:
    """Return the indices of ``items`` for each fraction: stratified and nested.

    Each label group (``task.stratify_key``) is shuffled once with ``seed``; a fraction takes
    the same leading share of every group (at least one example of each), so every subset
    keeps the label proportions and contains all smaller ones.
    """
    if not fractions or list(fractions) != sorted(fractions) or not (
            0 < fractions[0] and fractions[-1] <= 1):
        raise AnnotuneError(f"learning-curve fractions {list(fractions)} must rise within "
                            "(0, 1]", hint="for example 0.25 0.5 0.75 1")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, (_, annotation) in enumerate(items):
        groups[task.stratify_key(annotation)].append(index)
    rng = random.Random(seed)
    for key in sorted(groups):
        rng.shuffle(groups[key])
    subsets = []
    for fraction in fractions:
        chosen: list[int] = []
        for key in sorted(groups):
            members = groups[key]
            chosen += members[:min(len(members), max(1, round(len(members) * fraction)))]
        subsets.append(sorted(chosen))
    return subsets


def check_enough(train_examples: int, where: str | None = None) -> None:
    """Refuse a learning curve over too few training examples, saying how many it needs."""
    if train_examples < MIN_TRAIN_EXAMPLES:
        raise AnnotuneError(
            f"a learning curve needs at least {MIN_TRAIN_EXAMPLES} labeled training examples "
            f"(the project has {train_examples}): a quarter of them would be too few to train on",
            where=where, hint="label more examples first")


def bootstrap(task: Any, settings: Any, predictions: Sequence[Sequence[Mapping[str, Any]]],
              annotations: Sequence[Mapping[str, Any]], samples: int = BOOTSTRAP_SAMPLES,
              seed: int = 0) -> np.ndarray:
    """Return the main metric of every point on resampled validation sets: (samples, points).

    Each row resamples the validation examples once (with replacement) and scores every
    point's predictions on that same resample, so differences between points are paired.
    """
    main = task.main_metric
    count = len(annotations)
    rng = np.random.default_rng(seed)
    scores = np.full((samples, len(predictions)), np.nan)
    for row in range(samples):
        chosen = rng.integers(0, count, count)
        gold = [annotations[i] for i in chosen]
        for column, predicted in enumerate(predictions):
            value = task.metrics([predicted[i] for i in chosen], gold, settings).get(main)
            if isinstance(value, int | float) and math.isfinite(value):
                scores[row, column] = float(value)
    return scores


def interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """Return the central INTERVAL % of bootstrap values (None, None when none is finite)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None, None
    tail = (100 - INTERVAL) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def summarize(task: Any, points: Sequence[Mapping[str, Any]], resampled: np.ndarray,
              validation_examples: int) -> dict[str, Any]:
    """Build the stored curve: points with their intervals, and the verdict on the last gain.

    ``points`` hold ``fraction``, ``labels`` and ``score`` (the main metric on the whole
    validation set); ``resampled`` is ``bootstrap``'s result for the same points.
    """
    scale = float(getattr(task, "metric_scale", 1.0) or 1.0)
    shown, at_edge = [], []
    for column, point in enumerate(points):
        low, high = interval(resampled[:, column])
        # a perfect (or null) score: every draw agrees, the exact interval is the honest one
        low, high, edge = widened(low, high, float(point["score"]), validation_examples, scale)
        shown.append({**point, "low": low, "high": high})
        at_edge.append(edge)
    curve: dict[str, Any] = {
        "format": FORMAT, "main_metric": task.main_metric,
        "metric_scale": scale,
        "validation_examples": validation_examples, "interval": INTERVAL,
        "bootstrap_samples": int(resampled.shape[0]), "points": shown,
    }
    if len(points) >= 2:
        gain = float(points[-1]["score"]) - float(points[-2]["score"])
        low, high = interval(resampled[:, -1] - resampled[:, -2])
        if at_edge[-1] or at_edge[-2]:
            # the paired draws of an edge score do not vary: bound the gain by the points'
            # own intervals instead, which is what the validation set can tell
            before, after = shown[-2], shown[-1]
            if None not in (before["low"], before["high"], after["low"], after["high"]):
                low = min(low if low is not None else math.inf, after["low"] - before["high"])
                high = max(high if high is not None else -math.inf,
                           after["high"] - before["low"])
        curve["gain"] = {"from_fraction": points[-2]["fraction"],
                         "to_fraction": points[-1]["fraction"],
                         "value": gain, "low": low, "high": high}
    return curve


def to_points(value: float | None, metric_scale: float) -> float | None:
    """Express a metric difference in points (hundredths of a 0–1 metric, or percent)."""
    return None if value is None else value * 100.0 / metric_scale


def verdict(curve: Mapping[str, Any], metric: str = "") -> dict[str, Any]:
    """Say in one sentence whether labeling more is likely to help, from the last gain.

    ``kind``: "likely" (the interval of the gain lies above zero), "unlikely" (even its
    optimistic end is below WORTHWHILE_POINTS), "unclear" (anything between: the validation
    set is too small to tell). ``metric`` names the main metric in the sentence.
    """
    gain = curve.get("gain")
    if not gain:
        return {"kind": "unclear", "sentence": "A learning curve needs at least two points."}
    scale = float(curve.get("metric_scale") or 1.0)
    value, low, high = (to_points(gain.get(k), scale) for k in ("value", "low", "high"))
    share = f"{round((gain['to_fraction'] - gain['from_fraction']) * 100):g} %"
    of_metric = f" of {metric}" if metric else ""
    change = f"{_signed(value)} points{of_metric} from the last {share} of the labels"
    interval = (f"{curve.get('interval', INTERVAL)} % interval {_signed(low)} to {_signed(high)}"
                if low is not None and high is not None else "no interval")
    if high is not None and high < WORTHWHILE_POINTS:
        kind, sentence = "unlikely", f"Labeling more is unlikely to help: {change}."
    elif low is not None and low > 0:
        kind, sentence = "likely", f"Labeling more is likely to help: {change}."
    else:
        kind = "unclear"
        sentence = (f"The validation set is too small to tell whether labeling more helps: "
                    f"{change}.")
    detail = (f"{interval}, from {curve.get('validation_examples', '?')} validation examples "
              f"resampled {curve.get('bootstrap_samples', '?')} times")
    return {"kind": kind, "gain_points": value, "low_points": low, "high_points": high,
            "sentence": sentence, "detail": detail}


def _signed(points: float | None) -> str:
    if points is None:
        return "?"
    shown = f"{abs(points):.1f}"
    if shown == "0.0":
        return "±0.0"
    return ("+" if points > 0 else "−") + shown


# -- the stored curve -------------------------------------------------------------------------
def curve_path(runs_dir: str | os.PathLike[str], run_id: int) -> Path:
    """Return where the learning curve of a run is kept: beside its run.json."""
    return Path(runs_dir) / str(run_id) / FILE_NAME


def read_curve(runs_dir: str | os.PathLike[str], run_id: int) -> dict[str, Any] | None:
    """Return a run's stored learning curve, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads(curve_path(runs_dir, run_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        return None
    return data


def write_curve(runs_dir: str | os.PathLike[str], run_id: int, curve: Mapping[str, Any]) -> Path:
    """Store a run's learning curve; a crash leaves the previous one whole (atomic rename)."""
    path = curve_path(runs_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".learning_curve-", suffix=".json",
                                         dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(curve, out, indent=2, ensure_ascii=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
