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
