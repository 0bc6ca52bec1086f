"""How well the label check finds planted label errors (SST-2, CoNLL-2003).

Plants errors in a random subset of a public data set (classification: the label flipped;
NER: one entity's type swapped or one entity dropped), runs annotune's label check
(core/label_check.py: k-fold out-of-fold models through the training loop) and reports, with
k = the number of planted errors: precision among the k most suspect examples, and the share
of planted errors found among the 2k most suspect. For classification it also ranks the same
out-of-fold probabilities with cleanlab's ``find_label_issues`` (when cleanlab is installed;
the bench only, never a dependency of annotune).

    .venv/bin/python bench/label_errors.py --dataset sst2 --examples 2000 --folds 5 --epochs 2
    .venv/bin/python bench/label_errors.py --dataset conll2003 --examples 1000 --folds 3 --epochs 2

``--save-probabilities FILE`` keeps a run's out-of-fold probabilities; ``--combine FILE ...``
then ranks saved runs of the same planting alone and averaged, in seconds, without training.

Goal (SST-2, 2,000 examples, 10 % flipped): precision@k >= 0.7 and recall@2k >= 0.6.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DEFAULT_DATA_DIR,
    hardware,
    load_bench_data,
    print_json_line,
    print_table,
    quiet_transformers,
    resolve_base_model,
)


def plant_classification(items: list, labels: tuple[str, ...], rate: float, rng: random.Random
                         ) -> tuple[list, set[int]]:
    """Flip the label of ``rate`` of the items to another label, chosen at random."""
    chosen = set(rng.sample(range(len(items)), round(len(items) * rate)))
    noisy = []
    for index, (fields, annotation) in enumerate(items):
        if index in chosen:
            others = [label for label in labels if label != annotation["label"]]
            annotation = {"label": rng.choice(others)}
        noisy.append((fields, annotation))
    return noisy, chosen


def plant_spans(items: list, labels: tuple[str, ...], rate: float, rng: random.Random
                ) -> tuple[list, set[int]]:
    """In ``rate`` of the sentences with entities, swap one entity's type or drop it (half each)."""
    candidates = [i for i, (_, annotation) in enumerate(items) if annotation["spans"]]
    chosen = set(rng.sample(candidates, round(len(items) * rate)))
    noisy = []
    for index, (fields, annotation) in enumerate(items):
        spans = [dict(span) for span in annotation["spans"]]
        if index in chosen:
            victim = rng.randrange(len(spans))
            if rng.random() < 0.5:
                spans[victim]["label"] = rng.choice(
                    [label for label in labels if label != spans[victim]["label"]])
            else:
                del spans[victim]
        noisy.append((fields, {"spans": spans}))
    return noisy, chosen


def precision_recall(ranking: list[int], planted: set[int]) -> tuple[float, float]:
    """Return precision among the top k and recall among the top 2k (k = len(planted))."""
    k = len(planted)
    precision = len(set(ranking[:k]) & planted) / max(k, 1)
    recall = len(set(ranking[:2 * k]) & planted) / max(k, 1)
    return precision, recall


def cleanlab_ranking(ranked: list[Any], labels: tuple[str, ...],
                     probabilities: dict[int, dict[str, float]]) -> list[int] | None:
    """Rank the same out-of-fold probabilities with cleanlab; None when it is not installed."""
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        return None
    order = sorted(ranked, key=lambda r: r.example_id)
    given = np.array([labels.index(r.annotation["label"]) for r in order])
    matrix = np.array([[probabilities[r.example_id][label] for label in labels]
                       for r in order])
    found = find_label_issues(given, matrix, return_indices_ranked_by="self_confidence")
    flagged = [order[i].example_id for i in found]
    rest = [r.example_id for r in ranked if r.example_id not in set(flagged)]
    return flagged + rest  # cleanlab flags a set; what it leaves out follows in our order


def save_probabilities(path: Path, ranked: list[Any], labels: tuple[str, ...],
                       planted: set[int], noisy: list, settings: dict[str, Any]) -> None:
    """Write every example's out-of-fold result as JSON: rankings can then be compared offline.

    Classification rows carry ``probabilities`` (binary: recovered exactly from the score,
    ``1 - p(given)``); other tasks carry only the score.
    """
    rows = []
    for r in sorted(ranked, key=lambda r: r.example_id):
        fields, _ = noisy[r.example_id]
        row: dict[str, Any] = {"id": r.example_id, "fold": r.fold, "fields": fields,
                               "annotation": r.annotation, "score": r.issue.score,
                               "planted": r.example_id in planted}
        if "label" in r.annotation and len(labels) == 2:
            row["probabilities"] = {label: (1 - r.issue.score if label == r.annotation["label"]
                                            else r.issue.score) for label in labels}
        rows.append(row)
    meta = {key: str(value) if isinstance(value, Path) else value
            for key, value in settings.items()}
    path.write_text(json.dumps({"settings": meta, "labels": list(labels), "examples": rows},
                               ensure_ascii=False))


def load_saved(paths: list[Path]) -> tuple[list[str], list[dict[str, Any]], list[np.ndarray]]:
    """Read saved runs of one planting: labels, the examples, a probability matrix per run."""
    labels: list[str] | None = None
    examples: list[dict[str, Any]] | None = None
    matrices = []
    for path in paths:
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            rows = saved["examples"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            sys.exit(f"{path}: not a file written by --save-probabilities ({error}): run the "
                     "bench with --save-probabilities FILE first")
        if any("probabilities" not in row for row in rows):
            sys.exit(f"{path}: the examples carry no probabilities (only two-label "
                     "classification runs save them): combine classification runs")
        key = [(row["id"], row["annotation"], row["planted"]) for row in rows]
        if examples is None:
            labels, examples = saved["labels"], rows
        elif saved["labels"] != labels or key != [(row["id"], row["annotation"], row["planted"])
                                                  for row in examples]:
            sys.exit(f"{path}: not the same planted examples as {paths[0]}: combine runs made "
                     "with the same --dataset, --examples, --noise and --seed")
        matrices.append(np.array([[row["probabilities"][label] for label in saved["labels"]]
                                  for row in rows]))
    assert labels is not None and examples is not None
    return labels, examples, matrices


def ranking_by_self_confidence(matrix: np.ndarray, given: np.ndarray) -> list[int]:
    """Order rows by ``1 - p(given)``, most suspect first (ties: lower row first)."""
    p_given = matrix[np.arange(len(given)), given]
    return [int(i) for i in np.lexsort((np.arange(len(given)), p_given))]


def ranking_by_class_threshold(matrix: np.ndarray, given: np.ndarray) -> list[int]:
    """Order rows by how far p(given) falls below its label's mean (cleanlab's thresholds)."""
    p_given = matrix[np.arange(len(given)), given]
    thresholds = np.array([p_given[given == j].mean() if (given == j).any() else 0.0
                           for j in range(matrix.shape[1])])
    return [int(i) for i in np.lexsort((np.arange(len(given)), p_given - thresholds[given]))]


def combine(paths: list[Path]) -> int:
    """Rank saved runs of one planting alone and averaged; print precision@k and recall@2k."""
    labels, examples, matrices = load_saved(paths)
    given = np.array([labels.index(row["annotation"]["label"]) for row in examples])
    planted = {n for n, row in enumerate(examples) if row["planted"]}
    views = [(path.name, matrix) for path, matrix in zip(paths, matrices, strict=True)]
    if len(paths) > 1:
        views.append(("average of all", np.mean(matrices, axis=0)))
    rows = []
    for name, matrix in views:
        for rule, rank_by in (("self-confidence", ranking_by_self_confidence),
                              ("per-class threshold", ranking_by_class_threshold)):
            precision, recall = precision_recall(rank_by(matrix, given), planted)
            rows.append([name, rule, f"{precision:.3f}", f"{recall:.3f}"])
    print_table(f"{len(examples)} examples, {len(planted)} planted errors, saved runs combined",
                ["probabilities", "ranking", "precision@k", "recall@2k"], rows)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("sst2", "conll2003"), default="sst2")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.1, help="share of examples made wrong")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--freeze-encoder", action="store_true",
                        help="train only each fold's head (the cheap variant)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--combine", type=Path, nargs="+", default=None, metavar="FILE",
                        help="rank files written by --save-probabilities (one planting) alone "
                             "and averaged, instead of running a check (default: run one)")
    parser.add_argument("--save-probabilities", type=Path, default=None, metavar="FILE",
                        help="write each example's out-of-fold probabilities, given label, "
                             "fold, text and whether its error was planted, as JSON, so "
                             "rankings can be compared offline (default: not written)")
    args = parser.parse_args()
    if args.combine:
        return combine(args.combine)
    quiet_transformers()

    from annotune.core.label_check import find_label_issues
    from annotune.core.training.config import TrainConfig

    data = load_bench_data(args.dataset, args.data_dir)
    rng = random.Random(args.seed)
    subset = rng.sample(data.train, min(args.examples, len(data.train)))
    labels = data.settings.labels
    plant = plant_classification if args.dataset == "sst2" else plant_spans
    noisy, planted = plant(subset, labels, args.noise, rng)
    items = [(index, fields, annotation) for index, (fields, annotation) in enumerate(noisy)]
    config = TrainConfig(base_model=resolve_base_model(args.base_model), epochs=args.epochs,
                         batch_size=args.batch_size, max_length=args.max_length,
                         device=args.device, seed=args.seed, freeze_encoder=args.freeze_encoder,
                         early_stopping_patience=0,
                         **({"learning_rate": args.learning_rate} if args.learning_rate else {}))
    started = time.perf_counter()
    shown = [0.0]

    def emit(event: dict[str, Any]) -> None:
        now = time.perf_counter() - started
        if event.get("event") == "fold":
            print(f"fold {event['fold']}/{event['folds']} at {now:.0f} s", file=sys.stderr,
                  flush=True)
        elif event.get("event") == "progress" and now - shown[0] >= 30:
            shown[0] = now
            print(f"  fold {event.get('fold', '-')}: step {event['step']}/"
                  f"{event['total_steps']} at {now:.0f} s (eta {event.get('eta_s')} s)",
                  file=sys.stderr, flush=True)

    ranked = find_label_issues(data.task, data.settings, config, items, args.folds, emit)
    seconds = time.perf_counter() - started
    ranking = [r.example_id for r in ranked]
    precision, recall = precision_recall(ranking, planted)
    rows = [["annotune (self-confidence)" if args.dataset == "sst2" else "annotune (per span)",
             f"{precision:.3f}", f"{recall:.3f}"]]
    if args.dataset == "sst2":
        # binary: the given label's probability is 1 - score, the other label's is score
        probabilities = {r.example_id: {label: (1 - r.issue.score
                                                if label == r.annotation["label"]
                                                else r.issue.score) for label in labels}
                         for r in ranked}
        other = cleanlab_ranking(ranked, labels, probabilities)
        if other is None:
            print("cleanlab not installed", file=sys.stderr)
        else:
            c_precision, c_recall = precision_recall(other, planted)
            rows.append(["cleanlab find_label_issues", f"{c_precision:.3f}", f"{c_recall:.3f}"])
    if args.save_probabilities is not None:
        save_probabilities(args.save_probabilities, ranked, labels, planted, noisy, vars(args))
    mode = ("frozen encoder once, a head per layer per fold" if args.freeze_encoder
            else f"fine-tuned per fold, {args.epochs} epochs")
    print_table(f"{args.dataset}: {len(items)} examples, {len(planted)} planted errors, "
                f"{args.folds} folds, {mode}, {seconds:.0f} s",
                ["ranking", "precision@k", "recall@2k"], rows)
    print_json_line("label_errors", {
        "dataset": args.dataset, "examples": len(items), "planted": len(planted),
        "folds": args.folds, "epochs": args.epochs, "freeze_encoder": args.freeze_encoder,
        "seconds": round(seconds, 1), "precision_at_k": precision, "recall_at_2k": recall,
        "hardware": hardware()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
