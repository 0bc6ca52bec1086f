"""Measure how classification should read texts longer than one model window.

The long texts are built from real ones: each is ``--sentences`` SST-2 sentences (rows of at
least ``--min-words`` words, so phrases cut from one sentence do not repeat) joined into one
"review", labeled by the majority of its sentences' labels. Its verdict is spread over the whole
text, as in a real review whose last paragraph may change its mind; a truncated text shows the
model only its first sentences. Test reviews come from dev.tsv, training reviews from
train.tsv, never the same sentence twice.

Two questions, each answered on the held-out reviews:

* Prediction (``--model``, a trained classification run or checkpoint folder): combine the
  windows' logits by their mean, their probabilities' mean, the most confident window, a vote
  of the windows, or read the first window only (what truncation did).
* Training (``--train``): every window trains on its review's label, or only the first window
  does; both then predict with the mean of the windows' logits.

    python bench/long_texts.py --model RUN_DIR
    python bench/long_texts.py --train --train-reviews 300 --max-length 64 --epochs 3
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    SST2_LABELS,
    add_common_arguments,
    check_data_dir,
    hardware,
    pick_device,
    print_json_line,
    print_table,
    quiet_transformers,
    resolve_base_model,
)

SEED = 42
AGGREGATIONS = ("first window only", "mean of logits", "mean of probabilities",
                "most confident window", "vote of windows")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--model", type=Path, default=None,
                        help="a classification run folder (or its model/ folder) to predict "
                             "with: compares the ways of combining windows")
    parser.add_argument("--train", action="store_true",
                        help="train twice (every window vs the first window only) and compare")
    parser.add_argument("--sentences", type=int, default=7, help="sentences per review (odd)")
    parser.add_argument("--min-words", type=int, default=12,
                        help="shortest SST-2 row used as a sentence")
    parser.add_argument("--test-reviews", type=int, default=400)
    parser.add_argument("--train-reviews", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=128, help="tokens per window")
    return parser.parse_args(argv)


# -- the long texts ------------------------------------------------------------------------------

def _sentences(path: Path, min_words: int) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(row["sentence"].strip(), int(row["label"])) for row in rows
            if len(row["sentence"].split()) >= min_words]


def build_reviews(path: Path, count: int, sentences: int, min_words: int, seed: int
                  ) -> list[tuple[dict[str, str], dict[str, str]]]:
    """Join SST-2 sentences into reviews labeled by their sentences' majority."""
    pool = _sentences(path, min_words)
    random.Random(seed).shuffle(pool)
    reviews = []
    for start in range(0, min(len(pool), count * sentences) - sentences + 1, sentences):
        part = pool[start:start + sentences]
        positive = sum(label for _, label in part) * 2 > len(part)
        reviews.append(({"text": " ".join(text for text, _ in part)},
                        {"label": SST2_LABELS[int(positive)]}))
    return reviews[:count]


# -- prediction ----------------------------------------------------------------------------------

def window_logits(model_dir: Path, task: Any, settings: Any, examples: Sequence[dict],
                  device: Any) -> tuple[list[Any], list[np.ndarray]]:
    """Return the task's features and each feature's logits from a checkpoint."""
    import torch
    import transformers

    from annotune.core.features import (
        collate,
        length_sorted_batches,
        pad_id,
        prepare_tokenizer,
    )
    tokenizer = prepare_tokenizer(model_dir / "tokenizer.json")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(model_dir), dtype=torch.float32).to(device).eval()
    features = task.encode(tokenizer, examples, None, settings)
    logits: list[np.ndarray] = [np.zeros(0)] * len(features)
    with torch.inference_mode():
        for batch in length_sorted_batches(features, 32):
            arrays = collate([features[i] for i in batch], pad_id(tokenizer))
            tensors = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
            out = model(**tensors).logits.float().cpu().numpy()
            for row, index in enumerate(batch):
                logits[index] = out[row]
    return features, logits


def aggregate(features: Sequence[Any], logits: Sequence[np.ndarray], n: int, how: str
              ) -> np.ndarray:
    """Return one predicted class per example, combining its windows as ``how`` says."""
    per_example: list[list[np.ndarray]] = [[] for _ in range(n)]
    for feature, row in zip(features, logits, strict=True):
        per_example[feature.example_index].append(np.asarray(row, dtype=np.float64))
    chosen = []
    for rows in per_example:
        stack = np.stack(rows)
        probs = np.exp(stack - stack.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        if how == "first window only":
            score = stack[0]
        elif how == "mean of logits":
            score = stack.mean(axis=0)
        elif how == "mean of probabilities":
            score = probs.mean(axis=0)
        elif how == "most confident window":
            score = probs[int(probs.max(axis=1).argmax())]
        else:  # vote of windows, ties to the mean of logits
            votes = np.bincount(stack.argmax(axis=1), minlength=stack.shape[1]).astype(float)
            score = votes + 1e-3 * stack.mean(axis=0)
        chosen.append(int(np.argmax(score)))
    return np.asarray(chosen)


def compare_aggregations(model_dir: Path, task: Any, settings: Any,
                         test: Sequence[tuple[dict, dict]], device: Any) -> dict[str, Any]:
    """Score every way of combining windows on the test reviews."""
    examples = [fields for fields, _ in test]
    gold = np.asarray([SST2_LABELS.index(a["label"]) for _, a in test])
    features, logits = window_logits(model_dir, task, settings, examples, device)
    windows = np.bincount([f.example_index for f in features], minlength=len(test))
    scores = {how: float((aggregate(features, logits, len(test), how) == gold).mean())
              for how in AGGREGATIONS}
    return {"accuracy": scores, "windows_per_text": float(windows.mean()),
            "texts_in_several_windows": int((windows > 1).sum()), "texts": len(test)}


# -- training ------------------------------------------------------------------------------------

def first_window_training() -> Any:
    """Return a text-classification task whose first ``encode`` call keeps first windows only.

    The training loop encodes the training examples first, then validation; evaluation and
    prediction still read every window.
    """
    from annotune.plugins.text_classification import TextClassificationTask

    class FirstWindowTraining(TextClassificationTask):
        calls = 0

        def encode(self, tokenizer: Any, examples: Any, annotations: Any, settings: Any) -> Any:
            features = super().encode(tokenizer, examples, annotations, settings)
            self.calls += 1
            if self.calls > 1:
                return features
            seen: set[int] = set()
            first = []
            for feature in features:
                if feature.example_index not in seen:
                    seen.add(feature.example_index)
                    first.append(feature)
            return first

    return FirstWindowTraining()


def train_variant(task: Any, settings: Any, train: Sequence, args: argparse.Namespace,
                  base_model: str, device: Any, work: Path) -> tuple[Path, dict[str, Any]]:
    from annotune.core.training.config import TrainConfig
    from annotune.core.training.loop import train as run_training

    config = TrainConfig(base_model=base_model, device=device.type,
                         **({"epochs": args.epochs} if args.epochs else {}))
    result = run_training(task, settings, config, list(train), None, work)
    run = json.loads((work / "run.json").read_text())
    return work / "model", {"epochs": len(result.history), "best_epoch": result.best_epoch,
                            "train_s": result.duration_s,
                            "train_windows": run["long_texts"]["train"]["windows"]}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quiet_transformers()
    from annotune.core.plugins import registry
    from annotune.core.tasks import TaskSettings

    folder = check_data_dir(args.data_dir, "sst2")
    task = registry().task("text-classification")
    settings = TaskSettings(labels=SST2_LABELS, max_length=args.max_length)
    device = pick_device(args.device)
    test = build_reviews(folder / "dev.tsv", args.test_reviews, args.sentences, args.min_words,
                         SEED)
    print(f"{len(test)} held-out reviews of {args.sentences} sentences; windows of "
          f"{args.max_length} tokens; device {device.type}", flush=True)
    results: dict[str, Any] = {}
    if args.model is not None:
        model_dir = args.model / "model" if (args.model / "model").is_dir() else args.model
        results["prediction"] = compare_aggregations(model_dir, task, settings, test, device)
        found = results["prediction"]
        print_table(f"combining windows ({found['texts_in_several_windows']} of "
                    f"{found['texts']} reviews in several windows, "
                    f"{found['windows_per_text']:.2f} windows per review)",
                    ["prediction", "accuracy"], list(found["accuracy"].items()))
    if args.train:
        base_model = resolve_base_model(args.base_model)
        train = build_reviews(folder / "train.tsv", args.train_reviews, args.sentences,
                              args.min_words, SEED)
        rows = []
        with tempfile.TemporaryDirectory(prefix="annotune-long-") as tmp:
            for name, variant in (("every window", task),
                                  ("first window only", first_window_training())):
                print(f"training: {name}", file=sys.stderr, flush=True)
                model_dir, info = train_variant(variant, settings, train, args, base_model,
                                                device, Path(tmp) / name.replace(" ", "-"))
                scores = compare_aggregations(model_dir, task, settings, test, device)
                rows.append({"training": name, **info, "accuracy": scores["accuracy"]})
        results["training"] = rows
        print_table(f"training on {len(train)} reviews; held-out accuracy",
                    ["training", "epochs (best)", "windows trained", *AGGREGATIONS[:2]],
                    [[r["training"], f"{r['epochs']} ({r['best_epoch']})", r["train_windows"],
                      *(r["accuracy"][a] for a in AGGREGATIONS[:2])] for r in rows])
    print_json_line("long_texts", {"sentences": args.sentences, "max_length": args.max_length,
                                   "test_reviews": len(test), "hardware": hardware(),
                                   **results})


if __name__ == "__main__":
    main()
