"""Measure training throughput: annotune's loop against the Hugging Face Trainer.

Both train the same randomly initialised BERT-shaped classifier (accuracy is irrelevant here)
on the same SST-2 sentences at the same batch size and epochs. The Trainer runs the run_glue
way (every input padded to 128 tokens) in fp32 and in bf16, and in bf16 (fp32 on a CPU) with
dynamic padding and length-grouped batches; the best of them is compared with annotune at its
defaults for the device. Each variant runs in its own process, so none inherits another's
memory, compiled kernels or warm caches.

Throughput counts training samples per second of the training phase, from the first step to
the end of the last one: model loading and tokenization are outside it on both sides, and so is
annotune's validation after the last epoch (with several epochs, its validation on 256 dev
sentences between epochs is inside it).

    python bench/train_speed.py --train-limit 512            # CPU: MiniLM shape only
    python bench/train_speed.py --shapes minilm,bert-base    # GPU: full SST-2 train set
    python bench/train_speed.py --pairs                      # 128-token sentence pairs
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    SST2_LABELS,
    add_common_arguments,
    check_data_dir,
    hardware,
    load_classification,
    print_json_line,
    print_table,
    quiet_transformers,
    resolve_base_model,
    run_child,
)

SHAPES = {  # hidden, layers, heads, intermediate
    "minilm": (384, 6, 12, 1536),
    "bert-base": (768, 12, 12, 3072),
}
HF_VARIANTS = {  # name: (bf16, padding to max length, group_by_length)
    "hf-fp32": (False, True, False),
    "hf-bf16": (True, True, False),
    "hf-fp32-grouped": (False, False, True),
    "hf-bf16-grouped": (True, False, True),
}
MAX_LENGTH = 128
VALIDATION_SIZE = 256
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--shapes", default=None,
                        help="comma-separated model shapes: minilm, bert-base "
                             "(default: both on CUDA, minilm on a CPU)")
    parser.add_argument("--variants", default=None,
                        help="comma-separated: " + ", ".join([*HF_VARIANTS, "annotune"])
                             + " (default: fp32 and bf16 on CUDA, the fp32 ones on a CPU)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pairs", action="store_true",
                        help="sentence pairs cut to exactly 128 tokens (compute-bound case)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: one variant
    parser.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- data ----------------------------------------------------------------------------------------

def sentences(args: argparse.Namespace, cuda: bool) -> tuple[list[Any], list[Any], list[str]]:
    """Return training and validation items from SST-2 (pairs of 128 tokens with --pairs)."""
    from common import default_settings

    from annotune.core.plugins import registry
    folder = check_data_dir(args.data_dir, "sst2")
    name = "pair-classification" if args.pairs else "text-classification"
    task = registry().task(name)
    settings = default_settings(task, SST2_LABELS)
    single = registry().task("text-classification")
    notes: list[str] = []
    train = load_classification(folder / "train.tsv", single, settings, ("sentence",),
                                csv.QUOTE_NONE, notes)
    validation = load_classification(folder / "dev.tsv", single, settings, ("sentence",),
                                     csv.QUOTE_NONE, notes)[:VALIDATION_SIZE * 4]
    if args.pairs:
        train, validation = make_pairs(train), make_pairs(validation)
    limit = args.train_limit if args.train_limit is not None else (None if cuda else 512)
    return train[:limit], validation[:VALIDATION_SIZE], notes


def make_pairs(items: list[Any]) -> list[Any]:
    """Join consecutive sentences into two texts of at least 80 words each (> 64 tokens each),
    so that every pair is cut to exactly 128 tokens by both sides; the label is the first's."""
    pairs, texts, label = [], [], None
    for fields, annotation in items:
        label = label or annotation
        texts.append(fields["text"])
        words = sum(len(t.split()) for t in texts)
        if words >= 160:
            half, count, cut = words // 2, 0, 0
            while count < half:
                count += len(texts[cut].split())
                cut += 1
            pairs.append(({"text": " ".join(texts[:cut]), "text_pair": " ".join(texts[cut:])},
                          label))
            texts, label = [], None
    return pairs


def random_model(folder: Path, shape: str, base_model: str) -> Path:
    """Save a randomly initialised BERT classifier of ``shape`` with the base model's tokenizer."""
    import torch
    import transformers
    hidden, layers, heads, intermediate = SHAPES[shape]
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_model)
    config = transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=intermediate, max_position_embeddings=512,
        num_labels=2, id2label=dict(enumerate(SST2_LABELS)),
        label2id={label: i for i, label in enumerate(SST2_LABELS)})
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    target = folder / shape
    model.save_pretrained(target)
    for name in TOKENIZER_FILES:
        if (Path(base_model) / name).is_file():
            shutil.copy(Path(base_model) / name, target / name)
    return target


# -- one variant (child process) -----------------------------------------------------------------

def _peak_memory(cuda: bool) -> float | None:
    if not cuda:
        return None
    import torch
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def run_hf(variant: str, args: argparse.Namespace, model_dir: str, train: list[Any],
           cuda: bool) -> dict[str, Any]:
    """Train with the Trainer the way run_glue does; return throughput figures."""
    import torch
    import transformers
    from hf_recipes import make_trainer, training_arguments
    bf16, pad_to_max, grouped = HF_VARIANTS[variant]
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    texts = [fields["text"] for fields, _ in train]
    pairs = [fields["text_pair"] for fields, _ in train] if args.pairs else None
    enc = tokenizer(texts, pairs, padding="max_length" if pad_to_max else False,
                    max_length=MAX_LENGTH, truncation=True)
    labels = [SST2_LABELS.index(annotation["label"]) for _, annotation in train]
    rows = [{**{k: enc[k][i] for k in enc.keys()}, "label": labels[i]} for i in range(len(train))]
    collator = (transformers.default_data_collator if pad_to_max
                else transformers.DataCollatorWithPadding(tokenizer))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=torch.float32)
    marks: dict[str, float] = {}

    class Clock(transformers.TrainerCallback):
        def on_train_begin(self, *a: Any, **k: Any) -> None:
            marks["begin"] = time.perf_counter()

        def on_train_end(self, *a: Any, **k: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            marks["end"] = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="hf-speed-") as out:
        started = time.perf_counter()
        training = training_arguments(out, learning_rate=2e-5, batch_size=args.batch_size,
                                      epochs=args.epochs or 1, bf16=bf16,
                                      group_by_length=grouped, use_cpu=not cuda)
        trainer = make_trainer(model, training, rows, tokenizer, collator)
        trainer.add_callback(Clock())
        trainer.train()
        total = time.perf_counter() - started
    seconds = marks["end"] - marks["begin"]
    samples = len(rows) * (args.epochs or 1)
    return {"samples": samples, "train_s": round(seconds, 2), "wall_s": round(total, 2),
            "samples_per_s": round(samples / seconds, 1), "peak_gib": _peak_memory(cuda),
            "precision": "bf16" if bf16 else "fp32",
            "padding": "max_length 128" if pad_to_max else "dynamic, grouped by length"}


def run_annotune(args: argparse.Namespace, model_dir: str, train: list[Any],
                 validation: list[Any], cuda: bool) -> dict[str, Any]:
    """Train with annotune's loop at its device defaults; return throughput figures."""
    import torch
    from common import default_settings

    from annotune.core.plugins import registry
    from annotune.core.training.config import TrainConfig
    from annotune.core.training.loop import train as annotune_train
    task = registry().task("pair-classification" if args.pairs else "text-classification")
    settings = default_settings(task, SST2_LABELS).with_(max_length=MAX_LENGTH)
    config = TrainConfig(base_model=model_dir, batch_size=args.batch_size,
                         epochs=args.epochs or 1, device="cuda" if cuda else "cpu")
    marks: dict[str, float] = {}

    def should_stop() -> bool:
        marks.setdefault("begin", time.perf_counter())  # polled before every step
        return False

    def emit(event: dict[str, Any]) -> None:
        if event.get("event") == "progress" and event["step"] == event["total_steps"]:
            marks["end"] = time.perf_counter()  # the loss read waits for the GPU

    # The precision probe runs before the first step; its time is training overhead the
    # user pays, so it is counted in (and shown apart).
    import annotune.core.training.loop as loop
    choose_precision = loop.choose_precision

    def timed_choice(*args: Any, **kwargs: Any) -> Any:
        begin = time.perf_counter()
        try:
            return choose_precision(*args, **kwargs)
        finally:
            marks["probe"] = time.perf_counter() - begin

    loop.choose_precision = timed_choice
    with tempfile.TemporaryDirectory(prefix="annotune-speed-") as out:
        started = time.perf_counter()
        result = annotune_train(task, settings, config, train, validation, out, emit,
                                should_stop)
        total = time.perf_counter() - started
    if cuda:
        torch.cuda.synchronize()
    probe_s = marks.get("probe", 0.0)
    seconds = marks["end"] - marks["begin"] + probe_s
    samples = len(train) * len(result.history)
    return {"samples": samples, "train_s": round(seconds, 2), "wall_s": round(total, 2),
            "samples_per_s": round(samples / seconds, 1), "peak_gib": _peak_memory(cuda),
            "probe_s": round(probe_s, 2), "probe": result.device.get("precision_probe"),
            "precision": result.device.get("precision"),
            "padding": "dynamic, length buckets",
            "compiled": config.compile}


def child(args: argparse.Namespace) -> None:
    import torch
    quiet_transformers()
    cuda = args.device != "cpu" and torch.cuda.is_available()
    train, validation, _ = sentences(args, cuda)
    if args.one == "annotune":
        result = run_annotune(args, args.model_dir, train, validation, cuda)
    else:
        result = run_hf(args.one, args, args.model_dir, train, cuda)
    print("SPEED " + json.dumps(result), flush=True)


# -- the comparison (parent process) -------------------------------------------------------------

def run_variant(args: argparse.Namespace, variant: str, shape: str, model_dir: Path,
                ) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--one", variant,
               "--model-dir", str(model_dir), "--data-dir", str(args.data_dir),
               "--batch-size", str(args.batch_size), "--device", args.device]
    for flag, value in (("--train-limit", args.train_limit), ("--epochs", args.epochs)):
        if value is not None:
            command += [flag, str(value)]
    if args.pairs:
        command.append("--pairs")
    print(f"  {shape} {variant} ...", file=sys.stderr, flush=True)
    line, _, error = run_child(command, "SPEED ")
    if line is not None:
        return {"shape": shape, "variant": variant, **json.loads(line)}
    print(f"  {shape} {variant} failed: {error}", file=sys.stderr)
    return {"shape": shape, "variant": variant, "error": error}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        child(args)
        return
    import torch
    quiet_transformers()
    cuda = args.device != "cpu" and torch.cuda.is_available()
    shapes = (args.shapes or ("minilm,bert-base" if cuda else "minilm")).split(",")
    # bf16 on the CPU too: on CPUs with bf16 instructions (AVX512-BF16, AMX) it is the
    # Trainer's fastest setting, and annotune's automatic precision may choose it there.
    default_variants = ["hf-fp32", "hf-fp32-grouped", "hf-bf16-grouped", "annotune"]
    variants = args.variants.split(",") if args.variants else default_variants
    for name in [*shapes, *variants]:
        if name not in SHAPES and name not in HF_VARIANTS and name != "annotune":
            sys.exit(f"unknown shape or variant {name!r}")
    base_model = resolve_base_model(args.base_model)
    train, _, notes = sentences(args, cuda)
    print(f"{len(train)} training {'pairs of 128 tokens' if args.pairs else 'sentences'}, "
          f"batch {args.batch_size}, {args.epochs or 1} epoch(s), device "
          f"{'cuda' if cuda else 'cpu'}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="speed-models-") as tmp:
        for shape in shapes:
            model_dir = random_model(Path(tmp), shape, base_model)
            for variant in variants:
                results.append(run_variant(args, variant, shape, model_dir))
            shutil.rmtree(model_dir, ignore_errors=True)
    rows, ratios = [], {}
    for shape in shapes:
        mine = [r for r in results if r["shape"] == shape]
        hf = [r for r in mine if r["variant"] != "annotune" and "samples_per_s" in r]
        ours = [r for r in mine if r["variant"] == "annotune" and "samples_per_s" in r]
        best = max(hf, key=lambda r: r["samples_per_s"]) if hf else None
        if best and ours:
            ratios[shape] = round(ours[0]["samples_per_s"] / best["samples_per_s"], 2)
        for r in mine:
            mark = " (best HF)" if r is best else ""
            rows.append([shape, r["variant"] + mark, r.get("precision"), r.get("padding"),
                         r.get("samples_per_s"), r.get("train_s"), r.get("peak_gib"),
                         r.get("error", "")])
    info = hardware()
    print_table(f"training throughput ({len(train)} {'pairs' if args.pairs else 'sentences'}, "
                f"batch {args.batch_size}, {args.epochs or 1} epoch(s), "
                f"{info.get('gpu') if cuda else info['cpu']})",
                ["shape", "variant", "precision", "padding", "samples/s", "train s",
                 "peak GiB", "error"], rows)
    for shape, ratio in ratios.items():
        print(f"{shape}: annotune / best HF = {ratio}x")
    print_json_line("train_speed", {"device": "cuda" if cuda else "cpu", "hardware": info,
                                    "train_examples": len(train), "pairs": args.pairs,
                                    "batch_size": args.batch_size, "epochs": args.epochs or 1,
                                    "notes": notes, "results": results,
                                    "annotune_over_best_hf": ratios})


if __name__ == "__main__":
    main()
