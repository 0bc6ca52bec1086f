"""A perfect (or null) validation score says how far the truth may lie, not ±0."""

from __future__ import annotations

import numpy as np
import pytest

from annotune.core import cli, learning_curve
from annotune.core.score_interval import edge_interval, widened
from annotune.core.tasks import TaskSettings
from annotune.core.training.selection import bootstrap, resamples, uncertainty
from annotune.plugins.text_classification import TextClassificationTask

TASK = TextClassificationTask()
BINARY = TaskSettings(labels=("neg", "pos"))


def test_every_example_right_gives_the_exact_binomial_interval():
    # Clopper–Pearson for 20 of 20 at 95 %: 0.025 ** (1 / 20)
    assert edge_interval(1.0, 20) == pytest.approx((0.8316, 1.0), abs=1e-4)
    assert edge_interval(0.0, 20) == pytest.approx((0.0, 0.1684), abs=1e-4)
    assert edge_interval(1.0, 200)[0] == pytest.approx(0.9817, abs=1e-4)
    assert edge_interval(100.0, 20, scale=100.0) == pytest.approx((83.16, 100.0), abs=1e-2)


def test_a_score_inside_its_range_keeps_the_bootstrap_interval():
    assert edge_interval(0.95, 20) is None
    assert edge_interval(1.0, 0) is None
    assert widened(0.7, 0.9, 0.8, 20) == (0.7, 0.9, False)
    low, high, edge = widened(1.0, 1.0, 1.0, 20)
    assert edge and low == pytest.approx(0.8316, abs=1e-4) and high == 1.0


def _perfect_draws(n: int) -> tuple[np.ndarray, object]:
    gold = [{"label": "pos" if i % 2 else "neg"} for i in range(n)]
    plan = resamples(n, seed=42)
    draws = bootstrap(TASK, "f1", [dict(g) for g in gold], gold, BINARY, plan)
    return draws, plan


def test_a_run_right_on_every_validation_example_is_not_reported_as_certain():
    draws, plan = _perfect_draws(20)
    assert np.all(draws == 1.0)  # the bootstrap alone sees no spread at all
    spread = uncertainty("f1", 1.0, draws, plan)
    assert spread["standard_error"] is None
    assert spread["low"] == pytest.approx(0.8316, abs=1e-4) and spread["high"] == 1.0
    assert "exact" in spread["method"] and spread["examples"] == 20


def test_the_command_line_states_how_low_a_perfect_score_may_really_be():
    draws, plan = _perfect_draws(20)
    metrics = {"f1": 1.0, "accuracy": 1.0, "uncertainty": uncertainty("f1", 1.0, draws, plan)}
    assert cli.with_error(1.0, metrics, "f1") == "1.0000 (95 % ≥ 0.8316)"
    assert cli.with_error(1.0, metrics, "accuracy") == "1.0000"
    assert cli.uncertainty_line(metrics) == ("validation f1 1.0000 (95 % interval "
                                             "0.8316–1.0000, 20 validation examples)")
    assert "±" not in cli.uncertainty_line(metrics)


def _perfect_curve_verdict(n: int, samples: int) -> tuple[dict, dict]:
    """A learning curve whose four points are right on all n validation examples."""
    gold = [{"label": "pos" if i % 2 else "neg"} for i in range(n)]
    predictions = [[dict(g) for g in gold] for _ in range(4)]
    points = [{"fraction": f, "labels": 10 * (i + 1), "score": 1.0}
              for i, f in enumerate((0.25, 0.5, 0.75, 1.0))]
    resampled = learning_curve.bootstrap(TASK, BINARY, predictions, gold, samples=samples)
    curve = learning_curve.summarize(TASK, points, resampled, n)
    return curve, learning_curve.verdict(curve, "F1")


def test_a_learning_curve_of_perfect_points_on_few_examples_cannot_tell():
    curve, said = _perfect_curve_verdict(20, samples=100)
    assert curve["points"][-1]["low"] == pytest.approx(0.8316, abs=1e-4)
    assert said["kind"] == "unclear"  # not "unlikely to help", which 20 examples cannot know
    assert said["low_points"] < 0 < said["high_points"]


def test_a_perfect_score_on_many_examples_still_says_more_labels_are_unlikely_to_help():
    _, said = _perfect_curve_verdict(2000, samples=50)
    assert said["kind"] == "unlikely"
