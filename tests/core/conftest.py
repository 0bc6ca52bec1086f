"""Fixtures of the training tests: small labeled data and a single CPU thread."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

FILLER_WORDS = ("the", "film", "plot", "was", "really", "quite", "story", "and", "it", "acting")
Items = list[tuple[dict[str, str], dict[str, str]]]


@pytest.fixture(scope="session")
def sentiment_items() -> Callable[[int, int], Items]:
    """Return a maker of labeled texts: one sentiment word ("good"/"bad") among fillers."""
    def make(n: int, seed: int) -> Items:
        rng = random.Random(seed)
        out = []
        for i in range(n):
            label = "pos" if i % 2 == 0 else "neg"
            words = [rng.choice(FILLER_WORDS) for _ in range(rng.randint(2, 10))]
            words.insert(rng.randrange(len(words) + 1), "good" if label == "pos" else "bad")
            out.append(({"text": " ".join(words)}, {"label": label}))
        return out

    return make


@pytest.fixture(scope="module")
def one_cpu_thread():
    """Train on one CPU thread: two threads of a tiny model lose to each other on a busy CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
