"""Measure CPU inference latency: PyTorch eager fp32 against the exported fp32 and int8 bundles.

The model is the bundled base model with a freshly initialised two-label head (accuracy is
irrelevant to speed), saved as a run folder and exported with annotune's export. Every runtime
is measured in its own process (sharing one skews timings: thread pools, allocator state),
tokenization and decoding included, on:

* batch 1 over the first N SST-2 dev sentences (short texts, as typed by people),
* batch 1 at exactly 128 tokens (dev sentences joined and cut by the task's max length),
* batch 32 over the same dev sentences (the Predictor's default batch size).

PyTorch eager runs the same encode, collate and decode code as the Predictor, only the model
call differs. Cold start is the Predictor's import-to-first-prediction time in a fresh process,
which also checks that torch was never imported.

    python bench/inference_speed.py --sentences 200
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    REPO_ROOT,
    SST2_LABELS,
    check_data_dir,
    default_base_model,
    hardware,
    print_json_line,
    print_table,
    quiet_transformers,
    resolve_base_model,
    run_child,
)

RUNTIMES = ("torch-fp32", "onnx-fp32", "onnx-int8")
WARMUP = 10
LONG_TOKENS = 128


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path,
                        default=REPO_ROOT.parent / "shared" / "datasets")
    parser.add_argument("--base-model", default=None,
                        help="base model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--sentences", type=int, default=200,
                        help="first N SST-2 dev sentences for batch 1 and batch 32")
    parser.add_argument("--long", type=int, default=50, help="128-token texts at batch 1")
    parser.add_argument("--cold-starts", type=int, default=3,
                        help="fresh processes per bundle for the cold-start time (median)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every runtime (default: each runtime's own: torch's "
                             "intra-op default, the Predictor's one per physical core)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: one runtime
    parser.add_argument("--target", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--texts", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- set-up (parent) -----------------------------------------------------------------------------

def make_run(folder: Path, base_model: str, samples: list[str]) -> Path:
    """Save the base model with a new two-label head as a run folder annotune can export."""
    import torch
    import transformers

    from annotune.core.tasks import TaskSettings
    torch.manual_seed(0)
    labels = list(SST2_LABELS)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        base_model, num_labels=2, id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_model)
    run = folder / "run"
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    settings = TaskSettings(labels=tuple(labels))
    (run / "run.json").write_text(json.dumps({
        "task": "text-classification", "settings": settings.to_dict(), "metrics": {},
        "base_model": base_model, "samples": [{"text": t} for t in samples[:32]]}))
    return run


def load_texts(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Return the first N dev sentences and texts that fill exactly 128 tokens."""
    from annotune.core.features import prepare_tokenizer
    folder = check_data_dir(args.data_dir, "sst2")
    with (folder / "dev.tsv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    dev = [row["sentence"] for row in rows]
    tokenizer = prepare_tokenizer(Path(resolve_base_model(args.base_model)) / "tokenizer.json")
    long, current = [], []
    for sentence in dev:
        current.append(sentence)
        if len(tokenizer.encode(" ".join(current)).ids) > LONG_TOKENS:
            long.append(" ".join(current))  # cut to 128 tokens by the task's max_length
            current = []
        if len(long) == args.long:
            break
    return dev[:args.sentences], long


# -- one runtime (child) -------------------------------------------------------------------------

class TorchPredictor:
    """Predict like the bundle's Predictor, with the PyTorch model in place of onnxruntime."""

    def __init__(self, run_dir: Path, batch_size: int = 32):
        import torch
        import transformers

        from annotune.core.features import pad_id, prepare_tokenizer
        from annotune.core.plugins import registry
        from annotune.core.tasks import TaskSettings
        run = json.loads((run_dir / "run.json").read_text())
        self.torch = torch
        self.task = registry().task(run["task"])
        self.settings = TaskSettings.from_dict(run["settings"])
        self.tokenizer = prepare_tokenizer(run_dir / "model" / "tokenizer.json")
        self.pad = pad_id(self.tokenizer)
        self.batch_size = batch_size
        self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(run_dir / "model"), dtype=torch.float32).eval()

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        from annotune.core.features import collate, length_sorted_batches, split_outputs
        examples = [{"text": t} for t in texts]
        features = self.task.encode(self.tokenizer, examples, None, self.settings)
        outputs: list[Any] = [None] * len(features)
        with self.torch.inference_mode():
            for indices in length_sorted_batches(features, self.batch_size):
                batch = [features[i] for i in indices]
                arrays = collate(batch, self.pad)
                result = self.model(**{k: self.torch.from_numpy(v) for k, v in arrays.items()})
                raw = {"logits": result.logits.numpy()}
                for i, piece in zip(indices, split_outputs(raw, batch, False), strict=True):
                    outputs[i] = piece
        return self.task.decode(examples, features, outputs, self.settings)


def _per_example_ms(predict: Any, texts: list[str]) -> dict[str, float]:
    for text in texts[:WARMUP]:
        predict([text])
    times = []
    for text in texts:
        started = time.perf_counter()
        predict([text])
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"mean_ms": round(statistics.fmean(times), 3),
            "median_ms": round(statistics.median(times), 3),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))], 3)}


def _batched_ms(predict: Any, texts: list[str], batch: int) -> float:
    predict(texts[:batch])
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        predict(texts[start:start + batch])
    return round((time.perf_counter() - started) * 1000 / len(texts), 3)


def child(args: argparse.Namespace) -> None:
    texts = json.loads(Path(args.texts).read_text())
    if args.one == "torch-fp32":
        quiet_transformers()
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        predictor: Any = TorchPredictor(Path(args.target))
        threads = torch.get_num_threads()
    else:
        from annotune.core.inference import Predictor
        predictor = Predictor(args.target, threads=args.threads)
        options = predictor.session.get_session_options()
        threads = options.intra_op_num_threads
    result = {"threads": threads,
              "batch1_sentences": _per_example_ms(predictor.predict, texts["sentences"]),
              "batch1_128_tokens": _per_example_ms(predictor.predict, texts["long"]),
              "batch32_ms_per_example": _batched_ms(predictor.predict, texts["sentences"], 32)}
    print("LATENCY " + json.dumps(result), flush=True)


# -- the comparison (parent) ---------------------------------------------------------------------

COLD_START = """
import sys, time
started = time.perf_counter()
from annotune.core.inference import Predictor
predictor = Predictor(sys.argv[1])
predictor.predict(["a first prediction"])
print("COLD " + str(time.perf_counter() - started) + " " + str("torch" in sys.modules))
"""


def cold_start(bundle: Path, repeats: int) -> dict[str, Any]:
    inside, outside, torch_seen, error = [], [], False, ""
    for _ in range(repeats):
        line, wall, error = run_child([sys.executable, "-c", COLD_START, str(bundle)], "COLD ")
        if line is None:
            return {"error": error}
        seconds, imported = line.split()
        inside.append(float(seconds))
        outside.append(wall)
        torch_seen = torch_seen or imported == "True"
    return {"import_to_first_prediction_s": round(statistics.median(inside), 3),
            "process_wall_s": round(statistics.median(outside), 3),
            "torch_imported": torch_seen}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        child(args)
        return
    quiet_transformers()
    from annotune.core.export import export_run
    base_model = resolve_base_model(args.base_model or default_base_model())
    sentences, long = load_texts(args)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="inference-speed-") as tmp:
        folder = Path(tmp)
        run = make_run(folder, base_model, sentences)
        targets = {"torch-fp32": run}
        sizes = {"torch-fp32": sum(f.stat().st_size for f in (run / "model").iterdir())}
        for name, quantize in (("onnx-fp32", False), ("onnx-int8", True)):
            report = export_run(run, folder / name, quantize=quantize)
            targets[name] = folder / name
            sizes[name] = report.model_bytes
        texts_file = folder / "texts.json"
        texts_file.write_text(json.dumps({"sentences": sentences, "long": long}))
        for runtime in RUNTIMES:
            print(f"  {runtime} ...", file=sys.stderr, flush=True)
            command = [sys.executable, str(Path(__file__).resolve()), "--one", runtime,
                       "--target", str(targets[runtime]), "--texts", str(texts_file)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            line, _, error = run_child(command, "LATENCY ")
            results[runtime] = json.loads(line) if line else {"error": error}
            results[runtime]["model_mb"] = round(sizes[runtime] / 2**20, 1)
        cold = {name: cold_start(targets[name], args.cold_starts)
                for name in ("onnx-fp32", "onnx-int8")}
    info = hardware()
    rows = []
    base = results["torch-fp32"]
    for runtime in RUNTIMES:
        r = results[runtime]
        if "error" in r:
            rows.append([runtime, "-", "-", "-", "-", r["error"]])
            continue
        speedup = ""
        if "error" not in base and runtime != "torch-fp32":
            speedup = " / ".join(f"{base[k]['mean_ms'] / r[k]['mean_ms']:.2f}x" for k in
                                 ("batch1_sentences", "batch1_128_tokens"))
            speedup += f" / {base['batch32_ms_per_example'] / r['batch32_ms_per_example']:.2f}x"
        rows.append([runtime, r["batch1_sentences"]["mean_ms"], r["batch1_128_tokens"]["mean_ms"],
                     r["batch32_ms_per_example"], r["model_mb"], speedup])
    print_table(f"CPU inference, ms per example, tokenization included ({info['cpu']}, "
                f"{info['cpu_cores']} cores, threads {args.threads or 'default'}; "
                f"{len(sentences)} dev sentences, {len(long)} "
                f"texts of {LONG_TOKENS} tokens)",
                ["runtime", "batch 1 sentences", "batch 1 128 tok", "batch 32", "model MB",
                 "speed-up vs torch (b1 / b1-128 / b32)"], rows)
    print_table("Predictor cold start (fresh process, import to first prediction; median)",
                ["bundle", "import to first prediction s", "process wall s", "torch imported"],
                [[name, c.get("import_to_first_prediction_s"), c.get("process_wall_s"),
                  c.get("torch_imported", c.get("error"))] for name, c in cold.items()])
    print_json_line("inference_speed", {"hardware": info, "sentences": len(sentences),
                                        "threads": args.threads,
                                        "long_texts": len(long), "results": results,
                                        "cold_start": cold, "base_model": base_model})


if __name__ == "__main__":
    main()
