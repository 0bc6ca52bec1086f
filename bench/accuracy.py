"""Compare annotune's one-click training with the plain Hugging Face recipe on one data set.

Both sides start from the same base model and the same training pool and are scored on the
same held-out split by the task's own metric function:

* Hugging Face: the example script's documented recipe with the Trainer (run_glue for sst2 and
  rte, run_ner for conll2003, run_qa for squad), trained on the whole pool, final epoch kept.
* annotune: ``TrainConfig()`` defaults and the task's default settings, as a user who clicks
  Train gets them: it holds out its own validation part of the pool (early stopping and best
  epoch are chosen there, never on the held-out split), then the run is exported to an fp32 and
  an int8 ONNX bundle and both bundles are scored through the torch-free Predictor.

The annotune rows also give the score its own validation split reported (the main metric of
the kept epoch, with its bootstrap standard error): the gap between it and the held-out score
is what an honest validation split keeps small. ``--epoch-scores`` also scores the held-out
split after every epoch (never used to choose anything), so the epoch each selection rule
would keep can be compared on held-out data.

    python bench/accuracy.py --task sst2 --train-limit 1000 --eval-limit 500
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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

TASKS = ("sst2", "rte", "conll2003", "squad")
SHOWN = {"sst2": ("accuracy", "macro_f1"), "rte": ("accuracy", "macro_f1"),
         "conll2003": ("f1", "precision", "recall"), "squad": ("exact_match", "f1")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=TASKS, required=True)
    add_common_arguments(parser)
    parser.add_argument("--no-bundles", action="store_true",
                        help="skip the ONNX export and the bundle scores")
    parser.add_argument("--skip-hf", action="store_true", help="run annotune only")
    parser.add_argument("--skip-annotune", action="store_true", help="run the HF recipe only")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep the run and bundles here (default: a temporary folder)")
    parser.add_argument("--epoch-scores", action="store_true",
                        help="also score the held-out split after every annotune epoch")
    return parser.parse_args(argv)


def run_hf(args: argparse.Namespace, data: Any, base_model: str, device: Any) -> dict[str, Any]:
    """Train and score the Hugging Face recipe; return one result row."""
    import hf_recipes
    result = hf_recipes.RUNNERS[data.key](data.task, data.settings, data.train, data.test,
                                          base_model, args.epochs, device.type == "cpu")
    recipe = result.recipe
    return {"side": f"HF {recipe.name}", "train_examples": len(data.train),
            "epochs": result.epochs, "train_s": round(result.train_seconds, 1),
            "recipe": {"learning_rate": recipe.learning_rate, "batch_size": recipe.batch_size,
                       "max_length": recipe.max_length, "pad_to_max_length":
                       recipe.pad_to_max_length, "precision": "fp32"},
            "metrics": score(data.task, data.settings, result.predictions, data.test)}


def _progress(event: dict[str, Any]) -> None:
    if event.get("event") == "metrics":
        main = event.get("main_metric", "")
        value = event.get("metrics", {}).get(main)
        print(f"  annotune epoch {event['epoch']}: train loss {event['train_loss']:.4f}, "
              f"validation {main} {value:.4f}", file=sys.stderr, flush=True)


def run_annotune(args: argparse.Namespace, data: Any, base_model: str, device: Any,
                 work: Path) -> list[dict[str, Any]]:
    """Train with annotune's defaults, score the checkpoint and its fp32 and int8 bundles."""
    from annotune.core.training.config import TrainConfig
    from annotune.core.training.loop import train
    changes: dict[str, Any] = {"base_model": base_model, "device": device.type}
    if args.epochs:
        changes["epochs"] = args.epochs
    config = TrainConfig(**changes)
    run_dir = work / "run"
    curve: list[dict[str, Any]] = []
    with Timer() as timer, _held_out_each_epoch(data, base_model, curve, args.epoch_scores):
        result = train(data.task, data.settings, config, data.train, None, run_dir, _progress)
    run = json.loads((run_dir / "run.json").read_text())
    settings = result.settings or data.settings
    common = {"train_examples": run["train_examples"],
              "validation_examples": run["validation_examples"],
              "epochs": f"{len(result.history)} (best {result.best_epoch})"}
    predictions = predict_torch(run_dir / "model", data.task, settings, data.test, device)
    metric = data.task.main_metric
    spread = (run.get("metrics") or {}).get("uncertainty") or {}
    rows = [{"side": "annotune (torch)", **common, "train_s": round(timer.seconds, 1),
             "precision": result.device.get("precision"),
             "config": {k: v for k, v in config.to_dict().items() if k != "base_model"},
             "validation": {"metric": metric, "score": (run.get("metrics") or {}).get(metric),
                            "standard_error": spread.get("standard_error"),
                            "split": run.get("validation_split")},
             "history": [{"epoch": h["epoch"], "validation": h["metrics"].get(metric),
                          "standard_error": (h["metrics"].get("uncertainty") or {}).get(
                              "standard_error"),
                          "validation_loss": h["validation_loss"], "kept": h.get("kept"),
                          "held_out": curve[n] if n < len(curve) else None}
                         for n, h in enumerate(run["history"])],
             "metrics": score(data.task, settings, predictions, data.test)}]
    if args.no_bundles:
        return rows
    from annotune.core.export import export_run
    from annotune.core.inference import Predictor
    fields = [dict(f) for f, _ in data.test]
    for quantize, name in ((False, "fp32"), (True, "int8")):
        bundle = work / f"bundle-{name}"
        with Timer() as export_timer:
            report = export_run(run_dir, bundle, quantize=quantize)
        predictions = Predictor(bundle).predict(fields)
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        rows.append({"side": f"annotune {name} bundle", **common, "train_s": None,
                     "export_s": round(export_timer.seconds, 1),
                     "model_mb": round(report.model_bytes / 2**20, 1),
                     # what the export itself measured on the run's validation data
                     "export_validation": manifest.get("validation"),
                     "quantization": manifest.get("quantization"),
                     "metrics": score(data.task, settings, predictions, data.test)})
    return rows


@contextmanager
def _held_out_each_epoch(data: Any, base_model: str, curve: list[dict[str, Any]],
                         enabled: bool) -> Iterator[None]:
    """Score the held-out split whenever the loop evaluates an epoch (appended to ``curve``).

    The loop's evaluation pass is the one call of ``loop.predict`` that asks for the loss; the
    held-out split then runs through the same model, decode and metrics. Nothing here feeds
    back into the run: the kept epoch is chosen on validation data only.
    """
    if not enabled:
        yield
        return
    from annotune.core.features import prepare_tokenizer
    from annotune.core.training import loop

    original = loop.predict
    tokenizer = prepare_tokenizer(Path(base_model) / "tokenizer.json")
    fields = [dict(f) for f, _ in data.test]
    features = data.task.encode(tokenizer, fields, None, data.settings)

    def predict_and_score(model: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(model, task, *args, **kwargs)
        if kwargs.get("with_loss"):
            outputs, _ = original(model, task, features, *args[1:])
            predictions = task.decode(fields, features, outputs, data.settings)
            curve.append(score(task, data.settings, predictions, data.test))
        return result

    loop.predict = predict_and_score
    try:
        yield
    finally:
        loop.predict = original


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quiet_transformers()
    base_model = resolve_base_model(args.base_model)
    data = load_bench_data(args.task, args.data_dir, args.train_limit, args.eval_limit)
    device = pick_device(args.device)
    print(f"data set {args.task}: {len(data.train)} training examples, {len(data.test)} "
          f"held-out; base model {base_model}; device {device.type}", flush=True)
    for note in data.notes:
        print(f"  {note}")
    rows: list[dict[str, Any]] = []
    if not args.skip_hf:
        rows.append(run_hf(args, data, base_model, device))
    if not args.skip_annotune:
        with tempfile.TemporaryDirectory(prefix="annotune-bench-") as tmp:
            work = args.work_dir or Path(tmp)
            rows.extend(run_annotune(args, data, base_model, device, work))
    shown = SHOWN[args.task]
    table = [[row["side"], *[row["metrics"].get(k) for k in shown], _validation(row),
              row["train_examples"], row["epochs"], row["train_s"]] for row in rows]
    info = hardware()
    device_name = info.get("gpu") if device.type == "cuda" else info["cpu"]
    print_table(f"{args.task}: held-out scores ({len(data.test)} examples), "
                f"model {model_name(base_model)}, device {device.type} ({device_name})",
                ["side", *shown, "own validation", "train examples", "epochs", "train s"],
                table)
    for row in rows:
        if row.get("history") and args.epoch_scores:
            print_table("annotune per epoch (held-out scored for comparison only)",
                        ["epoch", "validation", "± se", "validation loss", "kept", "held-out"],
                        [[h["epoch"], h["validation"], h["standard_error"],
                          h["validation_loss"], h["kept"],
                          (h["held_out"] or {}).get(data.task.main_metric)]
                         for h in row["history"]])
    print_json_line("accuracy", {"task": args.task, "base_model": base_model,
                                 "train_pool": len(data.train), "held_out": len(data.test),
                                 "train_limit": args.train_limit, "eval_limit": args.eval_limit,
                                 "device": device.type, "hardware": info, "notes": data.notes,
                                 "rows": rows})


def _validation(row: dict[str, Any]) -> str | None:
    """Show the run's own validation score with its standard error (annotune's torch row)."""
    validation = row.get("validation")
    if not validation or validation.get("score") is None:
        return None
    error = validation.get("standard_error")
    text = f"{validation['metric']} {validation['score']:.4g}"
    return text + (f" ±{error:.2g}" if error is not None else "")


if __name__ == "__main__":
    main()
