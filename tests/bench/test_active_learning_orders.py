"""The simulated labeling orders pick what their descriptions say, on small synthetic pools."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import active_learning as al


def synthetic_round(count: int = 10, classes: int = 3, size: int = 300, seed: int = 0) -> al.Round:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    logits = rng.normal(size=(size, classes)) * 2
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return al.Round(probabilities, x, x[:5] + 0.01, al.pool_density(x), count, 100, rng)


def synthetic_data(size: int = 400, seed: int = 0) -> al.SimulationData:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size)
    x = rng.normal(size=(size, 8)) + y[:, None] * 1.5
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    texts = [f"sentence {i}" for i in range(size)]
    return al.SimulationData("synthetic", ["no", "yes"], texts, x, y, texts, x, y, "synthetic")


def test_margin_asks_which_two_classes_least_confidence_asks_how_sure():
    probabilities = np.array([[0.45, 0.45, 0.10],   # torn between two: margin 0
                              [0.40, 0.30, 0.30],   # least confident top class
                              [0.90, 0.05, 0.05]])
    assert al.least_confident(probabilities, 1).tolist() == [1]
    assert al.lowest(al.margins(probabilities), 1).tolist() == [0]
    two_classes = np.array([[0.7, 0.3], [0.55, 0.45], [0.2, 0.8]])
    assert (al.lowest(al.margins(two_classes), 3).tolist()
            == al.least_confident(two_classes, 3).tolist() == [1, 0, 2])


@pytest.mark.parametrize("strategy", sorted(al.PICKERS))
def test_every_order_picks_as_many_distinct_examples_as_asked(strategy):
    step = synthetic_round()
    chosen = al.PICKERS[strategy](step)
    assert len(chosen) == step.count
    assert len(set(chosen.tolist())) == step.count
    assert chosen.min() >= 0 and chosen.max() < len(step.x)


def test_k_center_greedy_takes_the_farthest_example_then_the_next_farthest():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [9.0, 0.0], [0.0, 5.0]])
    labeled = np.array([[0.0, 0.0]])
    # 10 is farthest from the label; then (0, 5) is farther from both than 9 is from 10
    assert al.k_center_greedy(x, labeled, 2).tolist() == [2, 4]


def test_badge_starts_from_the_longest_gradient_and_never_repeats():
    x = np.eye(4, dtype=np.float32)
    probabilities = np.array([[0.99, 0.01], [0.5, 0.5], [0.9, 0.1], [0.6, 0.4]])
    gradients = al.gradient_embeddings(probabilities, x)
    lengths = np.linalg.norm(gradients, axis=1)
    assert lengths.argmax() == 1 and lengths.argmin() == 0  # unsure: long; sure: short
    step = al.Round(probabilities, x, x[:0], np.ones(4), 4, 10, np.random.default_rng(0))
    chosen = al.pick_badge(step).tolist()
    assert chosen[0] == 1 and sorted(chosen) == [0, 1, 2, 3]


def test_density_prefers_the_doubt_that_stands_for_many():
    probabilities = np.array([[0.6, 0.4], [0.6, 0.4], [0.9, 0.1]])
    density = np.array([0.2, 0.9, 1.0])
    step = al.Round(probabilities, np.zeros((3, 2)), np.zeros((0, 2)), density, 1, 10,
                    np.random.default_rng(0))
    assert al.pick_density(step).tolist() == [1]


def test_pool_density_is_higher_inside_a_cluster_than_for_an_outlier():
    rng = np.random.default_rng(0)
    cluster = np.array([1.0, 0.0, 0.0]) + rng.normal(scale=0.05, size=(20, 3))
    x = np.vstack([cluster, [[0.0, 0.0, 1.0]]])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    density = al.pool_density(x, neighbours=5)
    assert density[:20].min() > density[20]
    assert ((0.0 <= density) & (density <= 1.0)).all()


@pytest.mark.parametrize("strategy", al.STRATEGIES)
def test_a_session_grows_by_rounds_to_the_budget(strategy, monkeypatch):
    monkeypatch.setattr(al, "COLD_START", 40)
    data = synthetic_data()
    seen: list[np.ndarray] = []
    curve = al.simulate(data, strategy, 0, 20, 20, 100, seen.append,
                        al.pool_density(data.pool_x))
    first = 40 if strategy == "cold-start" else 20
    assert [n for n, _ in curve] == list(range(first, 101, 20))
    assert all(len(set(labeled.tolist())) == len(labeled) for labeled in seen)
    assert all(0.0 <= accuracy <= 1.0 for _, accuracy in curve)


def test_orders_other_than_cold_start_share_the_first_labels():
    data = synthetic_data()
    firsts = {}
    for strategy in ("random", "margin", "badge"):
        seen: list[np.ndarray] = []
        al.simulate(data, strategy, 3, 20, 20, 20, seen.append)
        firsts[strategy] = sorted(seen[0].tolist())
    assert firsts["random"] == firsts["margin"] == firsts["badge"]


def rare_class_data(size: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """One class in ten, apart from the rest along one axis, with noise along seven more."""
    rng = np.random.default_rng(0)
    y = (np.arange(size) % 10 == 0).astype(int)
    x = np.hstack([np.where(y[:, None] == 1, 0.3, -0.3), 0.3 * rng.normal(size=(size, 7))])
    return x / np.linalg.norm(x, axis=1, keepdims=True), y


def test_cross_validation_drops_a_penalty_that_loses_the_rare_class():
    x, y = rare_class_data()
    strongest = al.fit_softmax(x, y, 2, al.L2_GRID[0])
    assert (al.predict_proba(x, strongest).argmax(1) != y).any()  # the rare class pays
    chosen = al.PenaltyChooser(len(y), 2, seed=0).choose(x, y, np.arange(len(y)))
    assert chosen < al.L2_GRID[0]
    weights = al.fit_softmax(x, y, 2, chosen)
    assert (al.predict_proba(x, weights).argmax(1) == y).all()


def test_cross_validation_keeps_the_strongest_penalty_when_all_score_alike():
    y = np.arange(200) % 2
    x = np.where(y[:, None] == 1, [[1.0, 0.0]], [[-1.0, 0.0]])  # any head gets every one right
    chosen = al.PenaltyChooser(len(y), 2, seed=0).choose(x, y, np.arange(len(y)))
    assert chosen == al.L2_GRID[0] == max(al.L2_GRID)


def test_a_cross_validated_session_picks_a_penalty_each_round_from_its_labels_alone():
    data = synthetic_data()
    data.test_y = 1 - data.test_y  # the test set must play no part in the choice
    chosen: list[float] = []
    curve = al.simulate(data, "margin", 0, 20, 20, 100, l2="cv", chosen_l2=chosen)
    assert len(chosen) == len(curve) == 5
    assert set(chosen) <= set(al.L2_GRID)
    flipped: list[float] = []
    data.test_y = 1 - data.test_y
    al.simulate(data, "margin", 0, 20, 20, 100, l2="cv", chosen_l2=flipped)
    assert flipped == chosen


def test_the_penalty_option_takes_a_number_or_cv_and_explains_anything_else():
    assert al.parse_args(["--l2", "cv"]).l2 == "cv"
    assert al.parse_args(["--l2", "0.003"]).l2 == 0.003
    assert al.parse_args([]).l2 == al.L2
    for wrong in ("strong", "-1"):
        with pytest.raises(SystemExit):
            al.parse_args(["--l2", wrong])


def test_margin_and_random_takes_half_its_batch_by_smallest_margin():
    step = synthetic_round(count=10)
    chosen = al.pick_margin_and_random(step)
    smallest = al.lowest(al.margins(step.probabilities), 5)
    assert chosen[:5].tolist() == smallest.tolist()
    assert not set(chosen[5:].tolist()) & set(smallest.tolist())
    assert len(set(chosen.tolist())) == 10


def test_class_shares_of_the_picks_sum_to_one_and_start_from_the_pool():
    data = synthetic_data()
    picked = {"margin": [np.arange(0, 40), np.arange(40, 80)], "badge": []}
    shares = al.picked_class_shares(data, picked)
    assert shares["(pool)"] == pytest.approx(np.bincount(data.pool_y) / len(data.pool_y),
                                             abs=1e-4)
    assert sum(shares["margin"]) == pytest.approx(1.0)
    assert "badge" not in shares  # an order without finished sessions has no shares


def test_the_pool_head_verdicts_split_each_session_at_half_the_budget():
    data = synthetic_data()
    pool_right = np.zeros(len(data.pool_y), dtype=bool)
    pool_right[:30] = True  # the head gets the first 30 pool examples right, no others
    picked = {"margin": [np.arange(10, 100)]}  # labels 11 to 100 of a 100-label session
    shares = al.picks_the_pool_head_gets_right(data, picked, pool_right, budget=100)
    # picked before 50 labels: examples 10..49 (20 of 40 right); after: 50..99 (none)
    assert shares["margin"] == [0.5, 0.0]
    assert shares["(pool)"] == [0.075, 0.075]
