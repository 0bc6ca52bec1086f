"""Simulate labeling sessions: how many labels does an order need to match random at 2,000?

A simulated session starts from ``--start`` labels drawn at random, then repeatedly fits a
model on the labels so far, lets a strategy pick the next ``--step`` examples of the pool,
and "labels" them (their gold labels are revealed), until ``--budget`` labels. Strategies:

* ``random``: the pool in random order (what labeling in import order amounts to).
* ``uncertainty``: least confidence first, the order annotune's pre-annotation gives the
  labeling view ("most uncertain first": lowest top-class probability).
* ``margin``: the smallest gap between the two most probable classes first (the same order
  as ``uncertainty`` on two classes).
* ``clustered``: uncertainty with diversity: the 10 x step least confident examples are
  clustered with k-means on the encoder's embeddings into ``step`` clusters and the least
  confident example of each cluster is taken, so a batch is not ten rewordings of one doubt.
* ``clustered-margin``: the same with margin in place of least confidence.
* ``badge``: BADGE, k-means++ seeding on the gradient embeddings of the head's loss (the
  model's own prediction as label), starting from the longest gradient.
* ``density``: information density, (1 - top probability) x representativeness (the mean
  cosine similarity to the 10 nearest pool examples, scaled into [0, 1]), exponent 1.
* ``coreset``: k-center greedy picks 10 x step examples far from the labels (and from each
  other); the least confident ``step`` of them are taken.
* ``cold-start``: the first batch is 300 k-means medoids of the pool instead of 100 random
  examples, then margin.
* ``margin-random``: half of each batch by smallest margin, the other half at random.

What is simulated: full fine-tuning after every round on two shared CPU cores would take
days, so the model of each round is the bundled all-MiniLM-L6-v2, frozen, with its
mean-pooled sentence embeddings (``--features layers``: the mean over its layers of their
mean-pooled states) feeding a logistic-regression head refitted to convergence every round
(its penalty ``--l2``, or ``--l2 cv``: chosen every round by cross-validation on the labels
so far). A head fitted on every pool label shows what the pool can teach this stand-in at
all, and judges each order's picks.
``--cross-check`` fine-tunes annotune's real training loop on a few of the label sets the
simulation chose, to see whether the saving carries over.

Data sets: ``sst2`` (pool: SST-2 ``train.tsv``, ``--pool-limit`` sentences drawn at random;
test: ``dev.tsv``) and ``topics``: the questions of the SQuAD file labeled by the coarse
topic of their article (36 articles grouped by hand into 5 topics below, in the absence of
AG News), split by paragraph: 20 % of the paragraphs (seed 42) are the test set.

    .venv/bin/python bench/active_learning.py --data topics sst2 --seeds 5 --pool-limit 6000
    .venv/bin/python bench/active_learning.py --data sst2 --seeds 5 --pool-limit 60614
    .venv/bin/python bench/active_learning.py --data topics --seeds 5 --l2 cv
    .venv/bin/python bench/active_learning.py --pick-timing 10000
"""

from __future__ import annotations

import os

# The simulation's products are small: BLAS threads on shared cores wait on each other more
# than they compute (a coreset pick of 100 from 10,000: 12.7 s with two threads at load
# average 8, 2.0 s with one at 3.3). Torch (the encoder, the head's fit) keeps its own.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import csv
import json
import random
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    DEFAULT_DATA_DIR,
    Timer,
    check_data_dir,
    hardware,
    print_json_line,
    print_table,
    quiet_transformers,
    resolve_base_model,
)
from sentence_embeddings import embed, fit_softmax, predict_proba

# The 36 articles of squad-v1.1-articles-a.json, grouped by hand into coarse topics.
TOPICS = {
    "media and sport": ("Super_Bowl_50", "Sky_(United_Kingdom)", "American_Broadcasting_Company",
                        "Doctor_Who"),
    "places": ("Warsaw", "Victoria_(Australia)", "Fresno,_California", "Newcastle_upon_Tyne",
               "Jacksonville,_Florida", "Kenya", "Rhine", "Amazon_rainforest"),
    "history": ("Normans", "Martin_Luther", "Huguenot", "1973_oil_crisis", "Black_Death",
                "Genghis_Khan", "Yuan_dynasty", "French_and_Indian_War", "Imperialism"),
    "science and technology": ("Computational_complexity_theory", "Oxygen", "Apollo_program",
                               "Ctenophora", "Geology", "Prime_number",
                               "Intergovernmental_Panel_on_Climate_Change"),
    "society and institutions": ("Teacher", "Private_school", "Economic_inequality",
                                 "Civil_disobedience", "Scottish_Parliament",
                                 "United_Methodist_Church", "Pharmacy", "Construction"),
}
STRATEGIES = ("random", "uncertainty", "clustered", "margin", "badge", "density", "coreset",
              "cold-start", "clustered-margin", "margin-random")
L2 = 1e-3  # the head's penalty per example (fit_softmax); chosen on part of the SST-2 pool
# --l2 cv: the penalties tried each round, strongest first (a tie goes to the stronger), scored
# by the held-out accuracy of CV_FOLDS folds of the labels so far
L2_GRID = (1e-2, 1e-3, 1e-4)
CV_FOLDS = 3
CANDIDATES = 10  # clustered, coreset: candidates per example picked
DENSITY_NEIGHBOURS = 10  # density: an example's representativeness is its 10 nearest neighbours'
DENSITY_WEIGHT = 1.0  # density: the exponent of representativeness (Settles and Craven's beta)
COLD_START = 300  # cold-start: the first batch, k-means medoids of the pool; then margin


@dataclass
class SimulationData:
    """Pool and test embeddings with integer labels."""

    key: str
    labels: list[str]
    pool_texts: list[str]
    pool_x: np.ndarray
    pool_y: np.ndarray
    test_texts: list[str]
    test_x: np.ndarray
    test_y: np.ndarray
    note: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", choices=("sst2", "topics"),
                        default=["sst2", "topics"])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--base-model", default=None,
                        help="encoder folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--seeds", type=int, default=3, help="simulated sessions per strategy")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--start", type=int, default=100, help="random labels to begin with")
    parser.add_argument("--step", type=int, default=100, help="labels added per round")
    parser.add_argument("--budget", type=int, default=2000,
                        help="labels at the end; random order's score there is the target")
    parser.add_argument("--features", choices=("mean", "layers"), default="mean",
                        help="the probe's input: the encoder's mean-pooled last layer, or the "
                             "mean over its layers of their mean-pooled states (default: mean)")
    parser.add_argument("--l2", type=penalty, default=L2,
                        help="the head's L2 penalty per example, or 'cv': chosen every round "
                             "by cross-validation on the labels so far among "
                             f"{', '.join(map(str, L2_GRID))} (default: {L2})")
    parser.add_argument("--pool-limit", type=int, default=20000,
                        help="sst2: sentences of train.tsv in the pool (drawn at random; "
                             "embedding all 60,614 takes a while on a CPU)")
    parser.add_argument("--cross-check", type=int, nargs="*", default=[], metavar="LABELS",
                        help="sst2: fine-tune annotune's training loop on the label sets of "
                             "seed 0 at these sizes (e.g. 1000 2000)")
    parser.add_argument("--cross-check-eval", type=int, default=2000,
                        help="test sentences the fine-tuned models are scored on")
    parser.add_argument("--pick-timing", type=int, default=0, metavar="EXAMPLES",
                        help="instead of simulating, time one pick of --step examples by each "
                             "strategy from this many unlabeled examples (random 384-wide "
                             "embeddings, 5 classes; 0 = off) (default: 0)")
    return parser.parse_args(argv)


def penalty(text: str) -> float | str:
    """Parse ``--l2``: a non-negative number, or ``cv``."""
    if text == "cv":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'cv'") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a penalty cannot be negative")
    return value


# -- data -----------------------------------------------------------------------------------------
def _read_sst2(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], np.array([int(r["label"]) for r in rows])


def load_sst2(data_dir: Path, pool_limit: int, model: str, features: str) -> SimulationData:
    folder = check_data_dir(data_dir, "sst2")
    texts, labels = _read_sst2(folder / "train.tsv")
    chosen = sorted(random.Random(42).sample(range(len(texts)), min(pool_limit, len(texts))))
    pool_texts = [texts[i] for i in chosen]
    test_texts, test_y = _read_sst2(folder / "dev.tsv")
    return SimulationData("sst2", ["negative", "positive"], pool_texts,
                          embed(pool_texts, model, features), labels[chosen], test_texts,
                          embed(test_texts, model, features), test_y,
                          f"pool: {len(chosen):,} of {len(texts):,} train.tsv sentences (seed "
                          f"42); test: dev.tsv, {len(test_texts):,} sentences")


def load_topics(data_dir: Path, model: str, features: str) -> SimulationData:
    folder = check_data_dir(data_dir, "squad")
    articles = json.loads((folder / "squad-v1.1-articles-a.json").read_text("utf-8"))["data"]
    topic_of = {title: topic for topic, titles in TOPICS.items() for title in titles}
    missing = sorted({a["title"] for a in articles} - set(topic_of))
    if missing:
        sys.exit(f"articles without a topic in TOPICS: {', '.join(missing)}")
    names = list(TOPICS)
    paragraphs = [(names.index(topic_of[a["title"]]), [q["question"] for q in p["qas"]])
                  for a in articles for p in a["paragraphs"]]
    held = set(random.Random(42).sample(range(len(paragraphs)), round(len(paragraphs) * 0.2)))
    pool = [(q, t) for i, (t, qs) in enumerate(paragraphs) if i not in held for q in qs]
    test = [(q, t) for i, (t, qs) in enumerate(paragraphs) if i in held for q in qs]
    pool_texts, test_texts = [q for q, _ in pool], [q for q, _ in test]
    return SimulationData("topics", names, pool_texts, embed(pool_texts, model, features),
                          np.array([t for _, t in pool]), test_texts,
                          embed(test_texts, model, features),
                          np.array([t for _, t in test]),
                          f"SQuAD questions labeled by their article's topic ({len(names)} "
                          f"topics); pool {len(pool):,} questions, test {len(test):,} questions "
                          f"of held-out paragraphs (20 %, seed 42)")


# -- strategies -----------------------------------------------------------------------------------
@dataclass
class Round:
    """What a strategy sees before it picks: the model's view of the pool and the labels so far."""

    probabilities: np.ndarray  # (unlabeled, classes) of the model fitted on the labels so far
    x: np.ndarray  # the unlabeled examples' embeddings
    labeled_x: np.ndarray  # the labeled examples' embeddings
    density: np.ndarray  # representativeness of each unlabeled example (see pool_density)
    count: int  # examples to pick
    labeled: int  # labels so far
    rng: np.random.Generator


def least_confident(probabilities: np.ndarray, count: int) -> np.ndarray:
    """Return the positions of the ``count`` lowest top-class probabilities, lowest first."""
    return lowest(probabilities.max(axis=1), count)


def margins(probabilities: np.ndarray) -> np.ndarray:
    """Return each row's gap between its two most probable classes."""
    top_two = np.partition(probabilities, probabilities.shape[1] - 2, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]


def lowest(values: np.ndarray, count: int) -> np.ndarray:
    """Return the positions of the ``count`` lowest values, lowest first (ties by position)."""
    chosen = np.argpartition(values, min(count, len(values) - 1))[:count]
    return chosen[np.lexsort((chosen, values[chosen]))]


def kmeans_pp_seeds(x: np.ndarray, k: int, rng: np.random.Generator,
                    first: int | None = None) -> list[int]:
    """Return ``k`` distinct rows chosen by k-means++ seeding (D² sampling)."""
    chosen = [int(rng.integers(len(x))) if first is None else first]
    norms = (x ** 2).sum(1)
    distance = squared_distances(x, norms, chosen[0])
    for _ in range(1, k):
        distance[chosen] = 0.0  # rounding must not let D² sampling repeat a row
        total = distance.sum()
        row = (int(rng.choice(len(x), p=distance / total)) if total > 0
               else int(rng.choice(np.setdiff1d(np.arange(len(x)), chosen))))
        chosen.append(row)
        distance = np.minimum(distance, squared_distances(x, norms, row))
    return chosen


def squared_distances(x: np.ndarray, norms: np.ndarray, row: int) -> np.ndarray:
    """Return every row's squared distance to ``x[row]`` (a product, not a copy of ``x``)."""
    return np.maximum(norms - 2.0 * (x @ x[row]) + norms[row], 0.0)


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 15
           ) -> tuple[np.ndarray, np.ndarray]:
    """Cluster rows of ``x`` into ``k`` groups (k-means++ start, Lloyd steps).

    Returns each row's cluster and the centres.
    """
    centre = x[kmeans_pp_seeds(x, k, rng)].copy()
    for _ in range(iterations):
        assigned = (-2 * x @ centre.T + (centre ** 2).sum(1)).argmin(1)
        for j in range(k):
            members = x[assigned == j]
            if len(members):
                centre[j] = members.mean(0)
    return (-2 * x @ centre.T + (centre ** 2).sum(1)).argmin(1), centre


def nearest_to_centres(x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Return one row per k-means cluster of ``x``: the row nearest its centre (a medoid)."""
    groups, centre = kmeans(x, count, rng)
    chosen: list[int] = []
    for j in range(count):
        members = np.flatnonzero(groups == j)
        if len(members):
            chosen.append(int(members[((x[members] - centre[j]) ** 2).sum(1).argmin()]))
    rest = np.setdiff1d(np.arange(len(x)), chosen)  # empty clusters: fill at random
    return np.array(chosen + rng.choice(rest, count - len(chosen), replace=False).tolist(),
                    dtype=int)


def k_center_greedy(x: np.ndarray, centres: np.ndarray, count: int) -> np.ndarray:
    """Return ``count`` rows of ``x``, each the farthest from ``centres`` and those before it."""
    norms = (x ** 2).sum(1)
    distance = np.full(len(x), np.inf)
    for start in range(0, len(centres), 1024):
        block = centres[start:start + 1024]
        distance = np.minimum(distance, (-2 * x @ block.T + (block ** 2).sum(1)).min(1) + norms)
    chosen: list[int] = []
    for _ in range(count):
        distance[chosen] = -np.inf
        row = int(distance.argmax())
        chosen.append(row)
        distance = np.minimum(distance, squared_distances(x, norms, row))
    return np.array(chosen, dtype=int)


def pick_clustered(step: Round, doubt: Callable[[np.ndarray], np.ndarray] | None = None
                   ) -> np.ndarray:
    """Cluster the most doubtful candidates; take the most doubtful of each cluster.

    Doubt is low confidence unless ``doubt`` says otherwise (lower values, more doubt).
    """
    confidence_of = doubt or (lambda probabilities: probabilities.max(1))
    candidates = lowest(confidence_of(step.probabilities),
                        min(len(step.x), CANDIDATES * step.count))
    groups, _ = kmeans(step.x[candidates], step.count, step.rng)
    confidence = confidence_of(step.probabilities[candidates])
    chosen = [candidates[members[np.argmin(confidence[members])]]
              for members in (np.flatnonzero(groups == j) for j in range(step.count))
              if len(members)]
    if len(chosen) < step.count:  # empty clusters: fill with the next most uncertain
        rest = [c for c in candidates if c not in set(chosen)]
        chosen += rest[:step.count - len(chosen)]
    return np.array(chosen)


def gradient_embeddings(probabilities: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Return the loss gradient of each example's last layer, its own prediction as label.

    The gradient of cross-entropy with respect to a linear head's weights (and bias) is
    (p - onehot(argmax p)) ⊗ [x, 1]: long where the model is unsure, and pointing where the
    example is, which is what BADGE clusters.
    """
    residual = probabilities.copy()
    residual[np.arange(len(residual)), residual.argmax(1)] -= 1.0
    inputs = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)])
    return (residual[:, :, None].astype(np.float32) * inputs[:, None, :]).reshape(len(x), -1)


def pick_badge(step: Round) -> np.ndarray:
    """BADGE: k-means++ seeding on the gradient embeddings, from the longest one."""
    gradients = gradient_embeddings(step.probabilities, step.x)
    first = int((gradients ** 2).sum(1).argmax())
    return np.array(kmeans_pp_seeds(gradients, step.count, step.rng, first=first), dtype=int)


def pick_density(step: Round) -> np.ndarray:
    """Information density: uncertainty (1 - top probability) times representativeness."""
    return lowest(-(1.0 - step.probabilities.max(1)) * step.density ** DENSITY_WEIGHT,
                  step.count)


def pick_coreset(step: Round) -> np.ndarray:
    """k-center greedy picks diverse candidates away from the labels; the least sure win."""
    candidates = k_center_greedy(step.x, step.labeled_x,
                                 min(len(step.x), CANDIDATES * step.count))
    return candidates[least_confident(step.probabilities[candidates], step.count)]


def pick_margin_and_random(step: Round) -> np.ndarray:
    """Half the batch by smallest margin, the other half at random from the rest.

    The random half keeps the labels a sample of the whole pool: what the smallest margins
    leave out (the examples the model is wrong about with confidence) still gets labeled, and
    the head is not fitted on boundary cases alone.
    """
    doubtful = lowest(margins(step.probabilities), (step.count + 1) // 2)
    rest = np.setdiff1d(np.arange(len(step.x)), doubtful)
    return np.concatenate([doubtful, step.rng.choice(rest, step.count - len(doubtful),
                                                     replace=False)])


PICKERS: dict[str, Callable[[Round], np.ndarray]] = {
    "random": lambda step: step.rng.choice(len(step.x), size=step.count, replace=False),
    "uncertainty": lambda step: least_confident(step.probabilities, step.count),
    "margin": lambda step: lowest(margins(step.probabilities), step.count),
    "clustered": pick_clustered,
    "clustered-margin": lambda step: pick_clustered(step, margins),
    "badge": pick_badge,
    "density": pick_density,
    "coreset": pick_coreset,
    "cold-start": lambda step: lowest(margins(step.probabilities), step.count),
    "margin-random": pick_margin_and_random,
}


def pool_density(x: np.ndarray, neighbours: int = DENSITY_NEIGHBOURS) -> np.ndarray:
    """Return each row's mean cosine similarity to its nearest rows, scaled into [0, 1].

    Rows are unit length, so the dot product is the cosine; a row in a dense region of the
    pool stands for many others, an outlier for itself.
    """
    density = np.empty(len(x))
    for start in range(0, len(x), 1024):
        similarity = x[start:start + 1024] @ x.T
        nearest = np.partition(similarity, similarity.shape[1] - neighbours - 1,
                               axis=1)[:, -neighbours - 1:]
        density[start:start + 1024] = (nearest.sum(1) - 1.0) / neighbours  # less itself
    return (density + 1.0) / 2.0


class PenaltyChooser:
    """Choose the head's L2 penalty every round by cross-validation on the labels so far.

    Only the session's own labels are used, as a person could: never the test set. The score
    is held-out accuracy, the measure the sessions are compared on (held-out log-loss favours
    weak penalties: a strong one keeps the probabilities flat even where their argmax is
    right). Each pool example keeps its fold for the whole session
    (drawn at random, not stratified: a fold may miss a rare class, as a person's would), so
    each fold's head starts from its own fit of the round before.
    """

    def __init__(self, pool_size: int, classes: int, seed: int,
                 grid: tuple[float, ...] = L2_GRID, folds: int = CV_FOLDS) -> None:
        self.classes, self.grid, self.folds = classes, grid, folds
        self.fold_of = np.empty(pool_size, dtype=int)
        self.fold_of[np.random.default_rng(seed).permutation(pool_size)] = (
            np.arange(pool_size) % folds)
        self.weights: dict[tuple[float, int], np.ndarray] = {}

    def choose(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float:
        """Return the penalty of the grid with the most held-out examples right.

        ``x`` and ``y`` are the labeled examples, ``rows`` their positions in the pool.
        """
        fold_of = self.fold_of[rows]
        right = []
        for l2 in self.grid:
            count = 0
            for fold in range(self.folds):
                train, held = fold_of != fold, fold_of == fold
                if not held.any() or not train.any():
                    continue
                weights = fit_softmax(x[train], y[train], self.classes, l2,
                                      start=self.weights.get((l2, fold)))
                self.weights[(l2, fold)] = weights
                count += int((predict_proba(x[held], weights).argmax(1) == y[held]).sum())
            right.append(count)
        return self.grid[int(np.argmax(right))]  # the first of equals: the stronger penalty


def simulate(data: SimulationData, strategy: str, seed: int, start: int, step: int,
             budget: int, on_round: Callable[[np.ndarray], None] | None = None,
             density: np.ndarray | None = None, l2: float | str = L2,
             chosen_l2: list[float] | None = None) -> list[tuple[int, float]]:
    """Run one simulated labeling session; return (labels, test accuracy) after each round.

    ``l2`` is the head's penalty, or ``"cv"`` to choose it every round from the labels so
    far (``PenaltyChooser``); the penalties used are appended to ``chosen_l2``.
    """
    rng = np.random.default_rng([seed, STRATEGIES.index(strategy)])
    if strategy == "cold-start":  # a larger first batch, chosen for diversity, not at random
        labeled = nearest_to_centres(data.pool_x, max(start, COLD_START), rng).tolist()
    else:
        start_rng = np.random.default_rng(seed)  # the same first labels for every strategy
        labeled = list(start_rng.choice(len(data.pool_y), size=start, replace=False))
    if density is None:
        density = np.ones(len(data.pool_y))
    classes = len(data.labels)
    chooser = PenaltyChooser(len(data.pool_y), classes, seed) if l2 == "cv" else None
    weights = None
    curve = []
    while True:
        x, y = data.pool_x[labeled], data.pool_y[labeled]
        penalty_now = (chooser.choose(x, y, np.array(labeled)) if chooser is not None
                       else float(l2))
        if chosen_l2 is not None:
            chosen_l2.append(penalty_now)
        weights = fit_softmax(x, y, classes, penalty_now, start=weights)
        accuracy = float((predict_proba(data.test_x, weights).argmax(1) == data.test_y).mean())
        curve.append((len(labeled), accuracy))
        if on_round is not None:
            on_round(np.array(labeled))
        if len(labeled) >= budget:
            return curve
        unlabeled = np.setdiff1d(np.arange(len(data.pool_y)), labeled)
        view = Round(predict_proba(data.pool_x[unlabeled], weights), data.pool_x[unlabeled],
                     data.pool_x[labeled], density[unlabeled],
                     min(step, budget - len(labeled)), len(labeled), rng)
        chosen = unlabeled[PICKERS[strategy](view)].tolist()
        if len(set(chosen)) != len(chosen):
            raise AssertionError(f"{strategy} picked an example twice")
        labeled += chosen


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """Return the labels at which a curve first reaches ``target`` (linear between rounds)."""
    for (n0, a0), (n1, a1) in zip([(0, 0.0), *curve], curve, strict=False):
        if a1 >= target:
            if n0 == 0 or a1 == a0:
                return float(n1)
            return n0 + (target - a0) / (a1 - a0) * (n1 - n0)
    return None


# -- the fine-tuning cross-check ------------------------------------------------------------------
def cross_check(data: SimulationData, sets: dict[str, dict[int, np.ndarray]], model: str,
                eval_limit: int) -> list[dict[str, Any]]:
    """Fine-tune annotune's loop (TrainConfig defaults) on chosen label sets; score them."""
    from common import pick_device, predict_torch

    from annotune.core.plugins import registry
    from annotune.core.tasks import TaskSettings
    from annotune.core.training.config import TrainConfig
    from annotune.core.training.loop import train
    task = registry().task("text-classification")
    settings = TaskSettings(labels=tuple(data.labels))
    test = [({"text": text}, {"label": data.labels[y]})
            for text, y in zip(data.test_texts[:eval_limit], data.test_y[:eval_limit],
                               strict=True)]
    rows = []
    for strategy, by_size in sets.items():
        for size, chosen in sorted(by_size.items()):
            items = [({"text": data.pool_texts[i]}, {"label": data.labels[data.pool_y[i]]})
                     for i in chosen]
            with tempfile.TemporaryDirectory(prefix="annotune-al-") as tmp:
                with Timer() as timer:
                    result = train(task, settings, TrainConfig(base_model=model), items, None,
                                   tmp)
                predictions = predict_torch(Path(tmp) / "model", task,
                                            result.settings or settings, test, pick_device("cpu"))
            accuracy = float(np.mean([p["label"] == a["label"]
                                      for p, (_, a) in zip(predictions, test, strict=True)]))
            rows.append({"strategy": strategy, "labels": size, "accuracy": accuracy,
                         "epochs": len(result.history), "train_s": round(timer.seconds, 1)})
            print(f"  cross-check {strategy} at {size}: fine-tuned accuracy {accuracy:.4f}",
                  file=sys.stderr, flush=True)
    return rows


# -- report ---------------------------------------------------------------------------------------
def _mean_spread(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def along_the_curve(args: argparse.Namespace, key: str,
                    curves: dict[str, list[list[tuple[int, float]]]], shown: list[int]
                    ) -> dict[str, dict[int, float | None]]:
    """Print, for random order's accuracy at each shown size, the labels each order needs.

    The saving at 2,000 labels is one point; where along the curve an order gains or loses
    its labels (the first rounds, or the last) shows which part of a strategy to change.
    """
    sizes = [n for n in shown if n > args.start]
    rows, figures = [], {}
    for strategy in args.strategies:
        row, figures[strategy] = [strategy], {}
        for n in sizes:
            target = float(np.mean([dict(c)[n] for c in curves["random"]]))
            needed = [labels_to_reach(c, target) for c in curves[strategy]]
            everyone = all(x is not None for x in needed)
            figures[strategy][n] = float(np.mean(needed)) if everyone else None
            row.append(f"{np.mean(needed):.0f} ({n / np.mean(needed):.1f}x)" if everyone
                       else f"{sum(x is not None for x in needed)} of {len(needed)} reach")
        rows.append(row)
    print_table(f"{key}: labels needed (mean over seeds) to reach random order's mean accuracy "
                "at each size", ["strategy", *[f"random at {n}" for n in sizes]], rows)
    return figures


def pool_ceiling(args: argparse.Namespace, data: SimulationData) -> tuple[float, np.ndarray]:
    """Fit a head on every pool example's label; return its test accuracy and pool verdicts.

    The verdicts say, per pool example, whether that head gets its gold label right: an
    example it gets wrong is one no head on these features learns from the whole pool.
    """
    classes = len(data.labels)
    pool = np.arange(len(data.pool_y))
    l2 = (PenaltyChooser(len(pool), classes, 0).choose(data.pool_x, data.pool_y, pool)
          if args.l2 == "cv" else float(args.l2))
    weights = fit_softmax(data.pool_x, data.pool_y, classes, l2)
    accuracy = float((predict_proba(data.test_x, weights).argmax(1) == data.test_y).mean())
    return accuracy, predict_proba(data.pool_x, weights).argmax(1) == data.pool_y


def picks_the_pool_head_gets_right(data: SimulationData, picked: dict[str, list[np.ndarray]],
                                   pool_right: np.ndarray, budget: int
                                   ) -> dict[str, list[float]]:
    """Print the share of each order's picks that the head on every pool label gets right.

    Split at half the budget: an order whose late picks that head mostly gets wrong is
    labeling examples no linear head on these features can learn (ambiguous or mislabeled
    text), which is where a doubt-first order stops paying.
    """
    half = budget // 2
    shares = {"(pool)": [float(pool_right.mean())] * 2}
    for strategy, sessions in picked.items():
        early = [s[:max(0, half - (budget - len(s)))] for s in sessions]
        late = [s[max(0, half - (budget - len(s))):] for s in sessions]
        if sessions:
            shares[strategy] = [float(pool_right[np.concatenate(early)].mean()),
                                float(pool_right[np.concatenate(late)].mean())]
    print_table(f"{data.key}: share of the picks that a head on all {len(pool_right):,} pool "
                "labels gets right (all seeds)",
                ["order", f"picked before {half} labels", f"picked from {half} labels"],
                [[order, *[f"{v:.3f}" for v in values]] for order, values in shares.items()])
    return {order: [round(v, 4) for v in values] for order, values in shares.items()}


def picked_class_shares(data: SimulationData, picked: dict[str, list[np.ndarray]]
                        ) -> dict[str, list[float]]:
    """Print each class's share of what every order picked after the first batch.

    An order that keeps asking about one class spends labels the other classes need; the
    pool's own shares are the yardstick (random order matches them).
    """
    shares = {"(pool)": np.bincount(data.pool_y, minlength=len(data.labels)) / len(data.pool_y)}
    for strategy, sessions in picked.items():
        if sessions:
            labels = data.pool_y[np.concatenate(sessions)]
            shares[strategy] = np.bincount(labels, minlength=len(data.labels)) / len(labels)
    print_table(f"{data.key}: each class's share of the labels picked after the first batch "
                "(all seeds)", ["order", *data.labels],
                [[order, *[f"{v:.2f}" for v in values]] for order, values in shares.items()])
    return {order: [round(float(v), 4) for v in values] for order, values in shares.items()}


def run_data(args: argparse.Namespace, data: SimulationData, model: str) -> dict[str, Any]:
    curves: dict[str, list[list[tuple[int, float]]]] = {}
    sets: dict[str, dict[int, np.ndarray]] = {}
    density = pool_density(data.pool_x) if "density" in args.strategies else None
    penalties: dict[str, list[list[float]]] = {}
    picked: dict[str, list[np.ndarray]] = {}  # each session's labels after the first batch
    for strategy in args.strategies:
        curves[strategy], penalties[strategy], picked[strategy] = [], [], []
        for seed in range(args.seeds):
            first: list[int] = []

            def keep(labeled: np.ndarray, strategy: str = strategy, seed: int = seed,
                     first: list[int] = first) -> None:
                first[:] = first or [len(labeled)]
                if seed == 0 and len(labeled) in args.cross_check:
                    sets.setdefault(strategy, {})[len(labeled)] = labeled.copy()
                if len(labeled) >= args.budget:
                    picked[strategy].append(labeled[first[0]:])
            penalties[strategy].append([])
            with Timer() as timer:
                curve = simulate(data, strategy, seed, args.start, args.step, args.budget, keep,
                                 density, args.l2, penalties[strategy][-1])
            curves[strategy].append(curve)
            print(f"  {data.key} {strategy} seed {seed}: accuracy {curve[-1][1]:.4f} at "
                  f"{curve[-1][0]} labels ({timer.seconds:.0f} s)", file=sys.stderr, flush=True)
    sizes = sorted({n for runs in curves.values() for n, _ in runs[0]})
    shown = [n for n in sizes if n in (args.start, 200, 300, 500, 750, 1000, 1500, args.budget)
             or n % 500 == 0]
    table = [[n, *[_mean_spread([dict(c)[n] for c in curves[s]]) if n in dict(curves[s][0])
                   else "-" for s in args.strategies]] for n in shown]
    print_table(f"{data.key}: test accuracy by labels (mean ± standard deviation over "
                f"{args.seeds} seeds)", ["labels", *args.strategies], table)
    ceiling, pool_right = pool_ceiling(args, data)
    summary: dict[str, Any] = {"note": data.note, "curves": curves, "l2": penalties,
                               "ceiling": ceiling}
    print(f"{data.key}: a head on all {len(data.pool_y):,} pool labels scores "
          f"{ceiling:.4f} (what the pool can teach this probe)", flush=True)
    summary["picked_shares"] = picked_class_shares(data, picked)
    summary["picks_right"] = picks_the_pool_head_gets_right(data, picked, pool_right,
                                                            args.budget)
    if args.l2 == "cv":
        print_table(f"{data.key}: penalty chosen by cross-validation (median over seeds)",
                    ["labels", *args.strategies],
                    [[n, *[f"{np.median([p[i] for p in penalties[s]]):g}"
                           for s in args.strategies]]
                     for i, n in enumerate(sizes) if n in shown])
    if "random" in curves:
        per_seed_target = [c[-1][1] for c in curves["random"]]
        target = float(np.mean(per_seed_target))
        rows = []
        for strategy in args.strategies:
            # each session against the mean target: the seed spread shows in the figures
            needed = [labels_to_reach(c, target) for c in curves[strategy]]
            reached = [n for n in needed if n is not None]
            everyone = len(reached) == len(needed)
            text = (f"{np.mean(reached):.0f} ± {np.std(reached):.0f}" if everyone
                    else f"{len(reached)} of {len(needed)} sessions reach it")
            # a saving only where every session reached the target: the others never did
            saving = args.budget / np.mean(reached) if everyone else None
            rows.append([strategy, text, f"{saving:.1f}x" if saving else "-"])
            summary.setdefault("labels_needed", {})[strategy] = needed
        print_table(f"{data.key}: labels needed to reach random order's accuracy at "
                    f"{args.budget} labels ({target:.4f})", ["strategy", "labels needed",
                                                            "saving"], rows)
        summary["target"] = target
        summary["along_the_curve"] = along_the_curve(args, data.key, curves, shown)
    if args.cross_check and data.key == "sst2":
        summary["cross_check"] = cross_check(data, sets, model, args.cross_check_eval)
        print_table("sst2: fine-tuned with annotune's defaults on the simulation's label sets "
                    f"(seed 0), first {args.cross_check_eval} dev.tsv sentences",
                    ["strategy", "labels", "accuracy", "epochs", "train s"],
                    [[r["strategy"], r["labels"], r["accuracy"], r["epochs"], r["train_s"]]
                     for r in summary["cross_check"]])
    return summary


def time_picks(args: argparse.Namespace) -> None:
    """Print how long one pick takes per strategy: could the labeling view afford it?"""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.pick_timing, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    logits = rng.normal(size=(args.pick_timing, 5)) * 2
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labeled_x = x[:args.start]
    density = pool_density(x) if "density" in args.strategies else np.ones(len(x))
    rows = []
    for strategy in args.strategies:
        view = Round(probabilities, x, labeled_x, density, args.step, COLD_START, rng)
        with Timer() as timer:
            PICKERS[strategy](view)
        rows.append([strategy, f"{timer.seconds:.2f}"])
    with Timer() as timer:
        pool_density(x)
    rows.append(["(density's neighbours, once per pool)", f"{timer.seconds:.2f}"])
    with Timer() as timer:
        nearest_to_centres(x, COLD_START, rng)
    rows.append([f"(cold-start's first batch of {COLD_START}, once)", f"{timer.seconds:.2f}"])
    print_table(f"one pick of {args.step} from {args.pick_timing:,} unlabeled examples "
                f"(seconds; load average {os.getloadavg()[0]:.1f})", ["strategy", "seconds"],
                rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.pick_timing:
        time_picks(args)
        return
    quiet_transformers()
    model = resolve_base_model(args.base_model)
    results = {}
    for key in args.data:
        with Timer() as timer:
            data = (load_sst2(args.data_dir, args.pool_limit, model, args.features)
                    if key == "sst2" else load_topics(args.data_dir, model, args.features))
        print(f"{key}: {data.note} (embedded in {timer.seconds:.0f} s)", flush=True)
        results[key] = run_data(args, data, model)
    print_json_line("active_learning", {
        "base_model": model, "seeds": args.seeds, "start": args.start, "step": args.step,
        "budget": args.budget, "l2": args.l2, "l2_grid": L2_GRID, "cv_folds": CV_FOLDS,
        "features": args.features,
        "candidates": CANDIDATES, "density_neighbours": DENSITY_NEIGHBOURS,
        "density_weight": DENSITY_WEIGHT, "cold_start": COLD_START,
        "hardware": hardware(), "results": results})


if __name__ == "__main__":
    main()
