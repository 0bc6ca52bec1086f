"""How sure a validation score is, and the epoch rule that does not chase noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from annotune.core.tasks import TaskSettings
from annotune.core.training.selection import (
    SUBSAMPLE,
    Candidate,
    EpochChoice,
    bootstrap,
    resamples,
    uncertainty,
)
from annotune.plugins.text_classification import TextClassificationTask

TASK = TextClassificationTask()
SETTINGS = TaskSettings(labels=("neg", "pos"))


def labeled(correct: np.ndarray) -> tuple[list[dict], list[dict]]:
    """Predictions and gold labels that agree exactly where ``correct`` is true."""
    gold = [{"label": "pos" if i % 2 else "neg"} for i in range(len(correct))]
    predictions = [{"label": g["label"] if ok else ("neg" if g["label"] == "pos" else "pos")}
                   for g, ok in zip(gold, correct, strict=True)]
    return predictions, gold


@pytest.mark.parametrize("n", [249, 3000])
def test_the_standard_error_of_accuracy_matches_the_binomial_one(n):
    correct = np.random.default_rng(0).random(n) < 0.6
    predictions, gold = labeled(correct)
    plan = resamples(n, seed=42)
    draws = bootstrap(TASK, "accuracy", predictions, gold, SETTINGS, plan)
    accuracy = float(correct.mean())
    spread = uncertainty("accuracy", accuracy, draws, plan)
    binomial = math.sqrt(accuracy * (1 - accuracy) / n)
    assert spread["standard_error"] == pytest.approx(binomial, rel=0.15)
    assert spread["low"] < accuracy < spread["high"]
    assert spread["examples"] == n and spread["draws"] == len(draws)
    assert plan.indices.shape[1] == min(n, SUBSAMPLE)


def test_resamples_are_the_same_for_every_epoch_of_a_run():
    assert np.array_equal(resamples(300, 7).indices, resamples(300, 7).indices)
    assert not np.array_equal(resamples(300, 7).indices, resamples(300, 8).indices)


def test_a_stop_request_ends_the_draws_at_once():
    predictions, gold = labeled(np.ones(50, dtype=bool))
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 3

    draws = bootstrap(TASK, "accuracy", predictions, gold, SETTINGS, resamples(50, 1), stop)
    assert np.isfinite(draws).sum() == 3 and len(asked) == 4


def epochs(*correct_sets: np.ndarray, losses: tuple[float, ...]) -> list[Candidate]:
    """Candidates scored on the same paired resamples, as the loop makes them."""
    plan = resamples(len(correct_sets[0]), seed=3)
    out = []
    for epoch, (correct, loss) in enumerate(zip(correct_sets, losses, strict=True), start=1):
        predictions, gold = labeled(correct)
        out.append(Candidate(epoch, float(correct.mean()), loss,
                             bootstrap(TASK, "accuracy", predictions, gold, SETTINGS, plan)))
    return out


def test_a_later_epoch_that_wins_by_noise_does_not_replace_a_more_confident_one():
    # RTE-sized validation: epoch 2 gets 3 more pairs right and 1 fewer, out of 249
    first = np.random.default_rng(1).random(249) < 0.55
    second = first.copy()
    second[np.flatnonzero(~first)[:3]] = True
    second[np.flatnonzero(first)[:1]] = False
    choice = EpochChoice(resamples(249, 3).scale)
    one, two = epochs(first, second, losses=(0.68, 0.71))
    assert choice.consider(one)[0]
    kept, why = choice.consider(two)
    assert not kept and "within the noise of epoch 1" in why
    assert choice.kept.epoch == 1


def test_within_the_noise_the_lower_validation_loss_is_kept():
    first = np.random.default_rng(2).random(249) < 0.55
    second = first.copy()
    second[np.flatnonzero(first)[:2]] = False  # one fewer right in all, more confident
    second[np.flatnonzero(~first)[:1]] = True
    choice = EpochChoice()
    one, two = epochs(first, second, losses=(0.70, 0.62))
    choice.consider(one)
    kept, why = choice.consider(two)
    assert kept and "lower validation loss" in why


def test_a_win_larger_than_the_noise_replaces_the_kept_epoch():
    first = np.random.default_rng(3).random(249) < 0.5
    second = first.copy()
    second[np.flatnonzero(~first)[:30]] = True  # 30 more right: far beyond chance
    choice = EpochChoice()
    one, two = epochs(first, second, losses=(0.60, 0.75))
    choice.consider(one)
    kept, why = choice.consider(two)
    assert kept and "more than the noise" in why


def test_a_score_that_is_not_a_number_is_never_kept():
    choice = EpochChoice()
    assert choice.consider(Candidate(1, float("nan"), 0.5, np.zeros(5))) == (
        False, "its score is not a number")
    assert choice.kept is None


def test_equal_scores_on_identical_draws_keep_the_lower_loss_as_before():
    draws = np.full(10, 0.8)
    choice = EpochChoice()
    choice.consider(Candidate(1, 0.8, 0.5, draws))
    assert choice.consider(Candidate(2, 0.8, 0.4, draws))[0]
    assert not choice.consider(Candidate(3, 0.8, 0.45, draws))[0]
    assert choice.consider(Candidate(4, 0.81, 0.9, draws + 0.01))[0]  # no noise: any win counts
