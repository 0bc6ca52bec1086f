"""Measure annotune with few labels: SST-2 with 8, 16, 64 labeled sentences per class.

For each size and seed, draw that many sentences of each class from SST-2's ``train.tsv``
(seeded, the same draw for every variant), train, and score accuracy on ``dev.tsv`` (the
whole file unless --eval-limit). Variants:

* ``defaults``: ``TrainConfig()`` as a user who clicks Train gets it (it holds out its own
  validation split from the drawn sentences, as a one-click run does); ``--set OPTION=VALUE``
  changes options of this variant (e.g. ``--set epochs=100 --set early_stopping_patience=30``).
* ``no-head-fit``, ``cls-pooler``: the defaults less one part of the pooled classifier
  (core/training/pooling.py), to measure what each part is worth; see ``patched``.
* ``probe``: no fine-tuning: a logistic-regression head on the frozen encoder's mean-pooled
  sentence embeddings (SetFit's head, without SetFit's contrastive fine-tuning).

    .venv/bin/python bench/few_labels.py --per-class 8 16 64 --seeds 3 --eval-limit 2000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    Timer,
    add_common_arguments,
    hardware,
    load_bench_data,
    model_name,
    pick_device,
    predict_torch,
    print_json_line,
    print_table,
    quiet_transformers,
    resolve_base_model,
    score,
)

VARIANTS = {"defaults": {}, "no-head-fit": {}, "cls-pooler": {}}


def patched(variant: str) -> contextlib.AbstractContextManager[Any]:
    """Switch off one part of the pooled classifier for a variant (none for ``defaults``).

    * ``no-head-fit``: the head on the declared pooling starts random, as transformers
      initialises it, instead of fitted on the frozen embeddings;
    * ``cls-pooler``: the model as annotune built it before: transformers' head on BERT's
      pooler over [CLS], whatever pooling the base model declares.
    """
    from unittest import mock
    if variant == "no-head-fit":
        return mock.patch("annotune.core.training.loop.fit_head", lambda *args: False)
    if variant == "cls-pooler":
        return mock.patch("annotune.core.training.model.declared_pooling", lambda folder: None)
    return contextlib.nullcontext()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--per-class", type=int, nargs="+", default=[8, 16, 64],
                        help="labeled sentences per class (one measurement each)")
    parser.add_argument("--seeds", type=int, default=3, help="draws (and training seeds) per size")
    parser.add_argument("--variants", nargs="+", default=["defaults", "probe"],
                        choices=[*VARIANTS, "probe"])
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                        help="override a TrainConfig option for the trained variants "
                             "(e.g. --set learning_rate=5e-5); repeat for several")
    return parser.parse_args(argv)


def draw(items: list[Any], per_class: int, seed: int) -> list[Any]:
    """Return ``per_class`` items of each label, drawn at random (seeded), shuffled."""
    by_label: dict[str, list[Any]] = {}
    for item in items:
        by_label.setdefault(item[1]["label"], []).append(item)
    rng = random.Random(seed)
    chosen = [item for label in sorted(by_label)
              for item in rng.sample(by_label[label], per_class)]
    rng.shuffle(chosen)
    return chosen


def overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse --set OPTION=VALUE pairs (values as JSON when they parse, else strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def train_and_score(data: Any, chosen: list[Any], config: Any, device: Any, work: Path
                    ) -> dict[str, Any]:
    """Train one run on ``chosen`` and score it on the held-out split."""
    from annotune.core.training.loop import train
    with Timer() as timer:
        result = train(data.task, data.settings, config, chosen, None, work)
    settings = result.settings or data.settings
    predictions = predict_torch(work / "model", data.task, settings, data.test, device)
    run = json.loads((work / "run.json").read_text())
    return {"metrics": score(data.task, settings, predictions, data.test),
            "train_s": round(timer.seconds, 1), "epochs": len(result.history),
            "best_epoch": result.best_epoch, "steps": run.get("steps")}


def probe_and_score(data: Any, chosen: list[Any], base_model: str) -> dict[str, Any]:
    """Fit a logistic-regression head on frozen mean-pooled embeddings; score it."""
    from sentence_embeddings import embed, fit_softmax, predict_proba
    labels = list(data.settings.labels)
    train_x = embed([f["text"] for f, _ in chosen], base_model, cache=False)
    train_y = np.array([labels.index(a["label"]) for _, a in chosen])
    test_x = embed([f["text"] for f, _ in data.test], base_model)
    weights = fit_softmax(train_x, train_y, len(labels))
    predicted = predict_proba(test_x, weights).argmax(1)
    truth = np.array([labels.index(a["label"]) for _, a in data.test])
    return {"metrics": {"accuracy": float((predicted == truth).mean())}}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quiet_transformers()
    base_model = resolve_base_model(args.base_model)
    data = load_bench_data("sst2", args.data_dir, None, args.eval_limit)
    device = pick_device(args.device)
    from annotune.core.training.config import TrainConfig
    extra = overrides(args.set)
    if args.epochs:
        extra["epochs"] = args.epochs
    print(f"SST-2: pool {len(data.train)} sentences, {len(data.test)} held-out; base model "
          f"{base_model}; device {device.type}; overrides {extra or 'none'}", flush=True)
    runs: list[dict[str, Any]] = []
    for per_class in args.per_class:
        for seed in range(args.seeds):
            chosen = draw(data.train, per_class, seed)
            for variant in args.variants:
                if variant == "probe":
                    outcome = probe_and_score(data, chosen, base_model)
                else:
                    config = TrainConfig(base_model=base_model, device=device.type, seed=seed,
                                         **{**VARIANTS[variant], **extra})
                    with (tempfile.TemporaryDirectory(prefix="annotune-few-") as tmp,
                          patched(variant)):
                        outcome = train_and_score(data, chosen, config, device, Path(tmp))
                runs.append({"per_class": per_class, "seed": seed, "variant": variant,
                             **outcome})
                print(f"  {per_class}/class seed {seed} {variant}: accuracy "
                      f"{outcome['metrics']['accuracy']:.4f}"
                      + (f" ({outcome['epochs']} epochs, {outcome['steps']} steps, "
                         f"{outcome['train_s']} s)" if "epochs" in outcome else ""),
                      file=sys.stderr, flush=True)
    rows = []
    for per_class in args.per_class:
        for variant in args.variants:
            scores = [r["metrics"]["accuracy"] for r in runs
                      if r["per_class"] == per_class and r["variant"] == variant]
            times = [r["train_s"] for r in runs if r["per_class"] == per_class
                     and r["variant"] == variant and "train_s" in r]
            rows.append([per_class, variant, f"{np.mean(scores):.3f} ± {np.std(scores):.3f}",
                         f"{min(scores):.3f}–{max(scores):.3f}",
                         round(float(np.mean(times)), 1) if times else None])
    print_table(f"SST-2 accuracy on {len(data.test)} held-out sentences, {args.seeds} seeds "
                f"(mean ± standard deviation), model {model_name(base_model)}",
                ["per class", "variant", "accuracy", "range", "train s"], rows)
    print_json_line("few_labels", {"base_model": base_model, "held_out": len(data.test),
                                   "seeds": args.seeds, "overrides": extra,
                                   "device": device.type, "hardware": hardware(), "runs": runs})


if __name__ == "__main__":
    main()
