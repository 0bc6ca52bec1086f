"""Measure how many predicted entities cut a token of pre-tokenized text (CoNLL-2003).

Trains annotune's defaults (``TrainConfig()``, the task's default settings) on the first
``--train-limit`` sentences of conll2003/train.txt, then predicts valid.txt through the task's
encode + decode (the code the Predictor runs) twice: from the text alone, and with each
sentence's own tokens (the CoNLL import joins them with single spaces). For each it prints the
share of predicted entities that do not start at a token start and end at a token end, and
the entity F1 (conlleval). ``--bundle`` predicts through an exported fp32 ONNX bundle and the
Predictor as well; ``--train-with-tokens`` also trains on the given tokens.

    .venv/bin/python bench/ner_token_boundaries.py --train-limit 600 --device cpu --bundle

On 2 CPU cores (valid.txt, 3,250 sentences): 320 of 6,373 predicted entities (5.0 %) are
off token boundaries from the text alone ("SOUTH KOREAN PRO-", "one-", "U"), none with the
tokens; entity F1 0.730 -> 0.746, the same through the fp32 bundle and the Predictor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (
    Timer,
    add_common_arguments,
    hardware,
    load_bench_data,
    pick_device,
    predict_torch,
    print_json_line,
    print_table,
    quiet_transformers,
    resolve_base_model,
    score,
)


def with_tokens(items: list[tuple[dict, dict]]) -> list[tuple[dict, dict]]:
    """Give each CoNLL sentence its tokens back: the importer joined them with single spaces."""
    return [({**fields, "tokens": fields["text"].split(" ")}, annotation)
            for fields, annotation in items]


def off_token_share(items: list[tuple[dict, dict]], predictions: list[dict[str, Any]]
                    ) -> tuple[int, int, list[str]]:
    """Count predicted spans that do not start at a token start and end at a token end."""
    off, total, examples = 0, 0, []
    for (fields, _), prediction in zip(items, predictions, strict=True):
        starts, ends, position = set(), set(), 0
        for token in fields["text"].split(" "):
            starts.add(position)
            ends.add(position + len(token))
            position += len(token) + 1
        for span in prediction["spans"]:
            total += 1
            if span["start"] not in starts or span["end"] not in ends:
                off += 1
                if len(examples) < 8:
                    examples.append(span["text"])
    return off, total, examples


def row(name: str, task: Any, settings: Any, items: list, predictions: list) -> dict[str, Any]:
    off, total, examples = off_token_share(items, predictions)
    metrics = score(task, settings, predictions, items)
    return {"prediction": name, "spans": total, "off_token": off,
            "off_token_pct": round(100 * off / total, 2) if total else 0.0,
            "f1": round(metrics["f1"], 4), "precision": round(metrics["precision"], 4),
            "recall": round(metrics["recall"], 4), "off_token_examples": examples}


def _progress(event: dict[str, Any]) -> None:
    if event.get("event") == "metrics":
        print(f"  epoch {event['epoch']}: train loss {event['train_loss']:.4f}, validation "
              f"f1 {event['metrics'].get('f1', 0.0):.4f}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--bundle", action="store_true",
                        help="also predict through an exported fp32 bundle and the Predictor")
    parser.add_argument("--train-with-tokens", action="store_true",
                        help="train on the sentences' own tokens too")
    args = parser.parse_args(argv)
    quiet_transformers()
    from annotune.core.training.config import TrainConfig
    from annotune.core.training.loop import train

    base_model = resolve_base_model(args.base_model)
    data = load_bench_data("conll2003", args.data_dir, args.train_limit, args.eval_limit)
    device = pick_device(args.device)
    train_items = with_tokens(data.train) if args.train_with_tokens else data.train
    changes: dict[str, Any] = {"base_model": base_model, "device": device.type}
    if args.epochs:
        changes["epochs"] = args.epochs
    print(f"conll2003: {len(data.train)} training sentences, {len(data.test)} held-out; "
          f"device {device.type}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="annotune-bench-") as tmp:
        run_dir = Path(tmp) / "run"
        with Timer() as timer:
            result = train(data.task, data.settings, TrainConfig(**changes), train_items,
                           None, run_dir, _progress)
        settings = result.settings or data.settings
        print(f"trained in {timer.seconds:.0f} s ({len(result.history)} epochs)",
              file=sys.stderr, flush=True)
        tokenized = with_tokens(data.test)
        for name, items in (("text only", data.test), ("with tokens", tokenized)):
            predictions = predict_torch(run_dir / "model", data.task, settings, items, device)
            rows.append(row(f"torch, {name}", data.task, settings, data.test, predictions))
        if args.bundle:
            from annotune.core.export import export_run
            from annotune.core.inference import Predictor
            predictor = Predictor(export_run(run_dir, Path(tmp) / "bundle").bundle_dir)
            for name, items in (("text only", data.test), ("with tokens", tokenized)):
                predictions = predictor.predict([fields for fields, _ in items])
                rows.append(row(f"bundle, {name}", data.task, settings, data.test,
                                predictions))
    print_table(f"conll2003 valid.txt: predicted entities off token boundaries "
                f"(trained on {len(data.train)} sentences"
                f"{' with tokens' if args.train_with_tokens else ''})",
                ["prediction", "spans", "off token", "off %", "entity F1"],
                [[r["prediction"], r["spans"], r["off_token"], r["off_token_pct"], r["f1"]]
                 for r in rows])
    for r in rows:
        if r["off_token_examples"]:
            print(f"  {r['prediction']}: e.g. {r['off_token_examples']}")
    print_json_line("ner_token_boundaries", {
        "train_sentences": len(data.train), "held_out": len(data.test),
        "train_with_tokens": args.train_with_tokens, "device": device.type,
        "hardware": hardware(), "rows": rows})


if __name__ == "__main__":
    main()
