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

The three processes stay loaded and take turns, one at a time: a turn is one workload's texts,
timed after a quarter of a second of untimed calls (a process that sat idle while the others
ran comes back slower for a while: caches, and the virtual CPUs' wake-up). A round is every
workload on every runtime; a speed-up is the median, over --rounds rounds, of PyTorch's time
divided by the runtime's time a few seconds later. On a shared or virtual machine the speed
drifts by a third or more within a minute: timing each runtime in one long block would count
that drift as a difference between runtimes.

User-style comparison (after the table above, or alone with --only-user-style): what a
person's own program sees. One process runs transformers' AutoTokenizer and the eager PyTorch
model, the others ``Predictor.predict([text])``, each at its default threads; they take turns
over the dev sentences, one call per sentence, without the warm-up at every turn (a program
that predicts now and then gets none), and a speed-up is the median over rounds. Each call is
timed on its own too: the median of the first 20 calls of a turn against that of the later
ones shows what coming back after the other processes' turns costs. --demo DIR
measures the bundles `annotune demo` wrote there (and its run's checkpoint for PyTorch)
instead of the freshly initialised head. The load average is printed with every table: the
figures mean little without it on a shared machine.

--breakdown (with --demo) shows where one predict([text]) call spends its time instead: the
Python side with the model left out, each operator's share of the graph's kernel time at one
thread (onnxruntime's profiler), and one run per sentence with two threads as sessions open,
two threads taking the work in shrinking blocks (onnxruntime's dynamic block base) and one
thread, the three alternating run by run; and the CPU time of the first calls after a pause
or a cache flush against steady ones (work redone, apart from waiting).

    python bench/inference_speed.py --sentences 200 --rounds 5
    python bench/inference_speed.py --only-user-style --demo demo-project
    python bench/inference_speed.py --breakdown --demo demo-project --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
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
# the user-style comparison: runtime -> the target it loads (a run folder or a bundle)
USER_RUNTIMES = {"user-torch-fp32": "torch-fp32", "user-onnx-fp32": "onnx-fp32",
                 "user-onnx-int8": "onnx-int8"}
USER_WORKLOAD = "user_batch1_sentences"
# workload -> (texts, batch size)
WORKLOADS = {"batch1_sentences": ("sentences", 1), "batch1_128_tokens": ("long", 1),
             "batch32": ("sentences", 32)}
WARMUP = 10  # calls per workload before the first turn
TURN_WARMUP_S = 0.25  # untimed calls at the start of every turn
PAUSE_S = 0.02
LONG_TOKENS = 128
FIRST_CALLS = 20  # user-style calls counted as "first of a turn"
# --breakdown's candidate: threads take an operator's work in shrinking blocks, so a running
# thread can take over the share of one that lost its core (not the sessions' setting: under
# load it helped as often as it hurt, docs/benchmarks.md)
WORK_IN_BLOCKS = {"session.dynamic_block_base": "4"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path,
                        default=REPO_ROOT.parent / "shared" / "datasets")
    parser.add_argument("--base-model", default=None,
                        help="base model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--sentences", type=int, default=200,
                        help="first N SST-2 dev sentences for batch 1 and batch 32")
    parser.add_argument("--long", type=int, default=50, help="128-token texts at batch 1")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of turns: every workload on every runtime, one at a time")
    parser.add_argument("--cold-starts", type=int, default=3,
                        help="fresh processes per bundle for the cold-start time (median)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every runtime (default: each runtime's own: torch's "
                             "intra-op default, the Predictor's one per physical core)")
    parser.add_argument("--only-user-style", action="store_true",
                        help="run only the user-style comparison (transformers' tokenizer and "
                             "eager model against Predictor.predict([text]))")
    parser.add_argument("--demo", type=Path, default=None,
                        help="user-style comparison on the bundles `annotune demo` wrote into "
                             "this folder (default: a fresh head on the bundled model)")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead of the comparison, show where one predict([text]) call "
                             "of each bundle spends its time: Python, operators, threads")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: one runtime
    parser.add_argument("--target", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--texts", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


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


class TransformersProgram:
    """Predict as a person's own PyTorch program does: transformers' tokenizer, eager model."""

    def __init__(self, run_dir: Path):
        import torch
        import transformers

        self.torch = torch
        folder = str(run_dir / "model")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
            folder, dtype=torch.float32).eval()

    def predict(self, texts: list[str]) -> list[list[float]]:
        with self.torch.inference_mode():
            inputs = self.tokenizer(texts, return_tensors="pt", truncation=True, max_length=128,
                                    padding=True)
            return self.model(**inputs).logits.softmax(-1).tolist()


def user_child(args: argparse.Namespace, sentences: list[str]) -> None:
    """Time one call per sentence per turn, as a program does: no warm-up at each turn."""
    if args.one == "user-torch-fp32":
        quiet_transformers()
        import torch
        predict: Any = TransformersProgram(Path(args.target)).predict
        threads = torch.get_num_threads()
    else:
        from annotune.core.inference import Predictor
        predictor = Predictor(args.target)
        predict = predictor.predict
        threads = predictor.session.get_session_options().intra_op_num_threads
    for text in sentences[:WARMUP]:
        predict([text])
    print("READY " + json.dumps({"threads": threads}), flush=True)
    for _ in sys.stdin:
        per_call = []
        for text in sentences:
            started = time.perf_counter()
            predict([text])
            per_call.append((time.perf_counter() - started) * 1000)
        print("TIMES " + json.dumps(per_call), flush=True)


def _timed_ms(predict: Any, texts: list[str], batch: int) -> list[float]:
    """Predict ``texts`` ``batch`` at a time; return ms per example of each call."""
    times = []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        started = time.perf_counter()
        predict(chunk)
        times.append((time.perf_counter() - started) * 1000 / len(chunk))
    return times


def child(args: argparse.Namespace) -> None:
    """Load one runtime, warm it up, then time the workloads the parent asks for (stdin)."""
    texts = json.loads(Path(args.texts).read_text())
    if args.one in USER_RUNTIMES:
        user_child(args, texts["sentences"])
        return
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
    for source, batch in WORKLOADS.values():
        _timed_ms(predictor.predict, texts[source][:WARMUP * batch], batch)
    print("READY " + json.dumps({"threads": threads}), flush=True)
    for line in sys.stdin:
        source, batch = WORKLOADS[line.strip()]
        # Waiting for its turn left this process's caches to the others and its CPUs idle;
        # untimed calls first, so a turn measures the runtime as it runs steadily.
        warm_until = time.perf_counter() + TURN_WARMUP_S
        while time.perf_counter() < warm_until:
            _timed_ms(predictor.predict, texts[source][:8 * batch], batch)
        print("TIMES " + json.dumps(_timed_ms(predictor.predict, texts[source], batch)),
              flush=True)


# -- the comparison (parent) ---------------------------------------------------------------------

class RuntimeProcess:
    """One runtime in its own process, timing a workload when its turn comes."""

    def __init__(self, runtime: str, target: Path, texts_file: Path, threads: int | None):
        command = [sys.executable, str(Path(__file__).resolve()), "--one", runtime,
                   "--target", str(target), "--texts", str(texts_file)]
        if threads:
            command += ["--threads", str(threads)]
        self.runtime = runtime
        # stderr goes to a file, not a pipe: nobody reads it while the runtime works, and a
        # full pipe would stall the child mid-turn
        self.errors = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.errors, text=True, cwd=REPO_ROOT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.threads = json.loads(self._reply("READY "))["threads"]

    def time_workload(self, workload: str) -> list[float]:
        assert self.process.stdin is not None
        self.process.stdin.write(workload + "\n")
        self.process.stdin.flush()
        return json.loads(self._reply("TIMES "))

    def _reply(self, prefix: str) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(prefix):
                return line[len(prefix):]
        self.process.wait(timeout=30)
        self.errors.seek(0)
        error = self.errors.read().strip()
        raise RuntimeError(f"{self.runtime}: " + (error.splitlines()[-1] if error else "exited"))

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        self.errors.close()


def take_turns(processes: dict[str, RuntimeProcess], rounds: int
               ) -> dict[str, dict[str, list[list[float]]]]:
    """Time every workload on each runtime in turn, ``rounds`` times; return times by round.

    The order of runtimes rotates from turn to turn, so none always follows the same one.
    """
    times: dict[str, dict[str, list[list[float]]]] = {
        runtime: {workload: [] for workload in WORKLOADS} for runtime in processes}
    order = list(processes)
    for round_number in range(1, rounds + 1):
        print(f"  round {round_number} of {rounds} ...", file=sys.stderr, flush=True)
        for workload in WORKLOADS:
            order = order[1:] + order[:1]
            for runtime in order:
                time.sleep(PAUSE_S)  # the previous runtime's spinning threads go idle
                times[runtime][workload].append(processes[runtime].time_workload(workload))
    return times


def summarise(times: dict[str, dict[str, list[list[float]]]]) -> dict[str, Any]:
    """Per runtime and workload: mean, median and p90 ms per example over all rounds, and the
    speed-up over PyTorch: the median over rounds of PyTorch's mean / the runtime's mean."""
    summary: dict[str, Any] = {}
    base = times.get("torch-fp32")
    for runtime, workloads in times.items():
        summary[runtime] = {}
        for workload, per_round in workloads.items():
            flat = sorted(t for one_round in per_round for t in one_round)
            entry: dict[str, Any] = {
                "mean_ms": round(statistics.fmean(flat), 3),
                "median_ms": round(statistics.median(flat), 3),
                "p90_ms": round(flat[int(0.9 * (len(flat) - 1))], 3),
                "round_means_ms": [round(statistics.fmean(r), 3) for r in per_round]}
            if base is not None and runtime != "torch-fp32":
                ratios = [statistics.fmean(b) / statistics.fmean(c)
                          for b, c in zip(base[workload], per_round, strict=True)]
                entry["speedup"] = round(statistics.median(ratios), 2)
                entry["speedup_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
            summary[runtime][workload] = entry
    return summary


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


def export_targets(folder: Path, base_model: str, samples: list[str]) -> dict[str, Path]:
    """Save the fresh-head run and export its fp32 and int8 bundles; return them by runtime."""
    from annotune.core.export import export_run

    run = make_run(folder, base_model, samples)
    targets = {"torch-fp32": run}
    for name, quantize in (("onnx-fp32", False), ("onnx-int8", True)):
        targets[name] = export_run(run, folder / name, quantize=quantize).bundle_dir
    return targets


def demo_targets(demo: Path) -> dict[str, Path]:
    """Return the demo's latest run and its two bundles by runtime (`annotune demo` layout)."""
    runs = sorted((p for p in (demo / "demo-runs").glob("*") if (p / "run.json").exists()),
                  key=lambda p: int(p.name) if p.name.isdigit() else -1)
    targets = {"onnx-fp32": demo / "bundle-fp32", "onnx-int8": demo / "bundle-int8"}
    missing = [str(p) for p in targets.values() if not (p / "manifest.json").exists()]
    if not runs or missing:
        sys.exit(f"{demo} holds no demo run or bundles ({', '.join(missing) or 'demo-runs/'}): "
                 "run `annotune demo --dir` there first")
    return {"torch-fp32": runs[-1], **targets}


def model_bytes(target: Path) -> int:
    folder = target / "model" if (target / "model").is_dir() else target
    return sum(f.stat().st_size for f in folder.iterdir()
               if f.is_file() and (f.name.startswith("model") or f.suffix == ".safetensors"))


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def user_style(targets: dict[str, Path], texts_file: Path, rounds: int) -> dict[str, Any]:
    """Take turns between the user-style processes; return ms per sentence and speed-ups."""
    print(f"  user-style: loading {', '.join(USER_RUNTIMES)} ...", file=sys.stderr, flush=True)
    processes: dict[str, RuntimeProcess] = {}
    times: dict[str, list[float]] = {runtime: [] for runtime in USER_RUNTIMES}
    # single calls, split where a turn starts: what waiting for a turn costs shows apart
    first: dict[str, list[float]] = {runtime: [] for runtime in USER_RUNTIMES}
    later: dict[str, list[float]] = {runtime: [] for runtime in USER_RUNTIMES}
    loads = [load_average()]
    try:
        for runtime, target in USER_RUNTIMES.items():
            processes[runtime] = RuntimeProcess(runtime, targets[target], texts_file, None)
        order = list(processes)
        for round_number in range(1, rounds + 1):
            print(f"  user-style round {round_number} of {rounds} ...", file=sys.stderr,
                  flush=True)
            order = order[1:] + order[:1]
            for runtime in order:
                calls = processes[runtime].time_workload(USER_WORKLOAD)
                times[runtime].append(statistics.fmean(calls))
                first[runtime] += calls[:FIRST_CALLS]
                later[runtime] += calls[FIRST_CALLS:]
            loads.append(load_average())
    finally:
        for process in processes.values():
            process.close()
    base = times["user-torch-fp32"]
    result: dict[str, Any] = {"load_average": [min(loads), max(loads)]}
    for runtime, per_round in times.items():
        entry: dict[str, Any] = {"median_ms": round(statistics.median(per_round), 3),
                                 "round_ms": [round(t, 3) for t in per_round],
                                 "threads": processes[runtime].threads,
                                 "first_calls_median_ms": round(statistics.median(first[runtime]),
                                                                3),
                                 "later_calls_median_ms": (round(statistics.median(
                                     later[runtime]), 3) if later[runtime] else None)}
        if runtime != "user-torch-fp32":
            ratios = [b / t for b, t in zip(base, per_round, strict=True)]
            entry["speedup"] = round(statistics.median(ratios), 2)
            entry["speedup_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
        result[runtime] = entry
    return result


# -- where one call's time goes (--breakdown) ----------------------------------------------------

class _ZeroSession:
    """Stand in for onnxruntime: zeros of the right shape, so only the Python side is timed."""

    def __init__(self, session: Any):
        self._session = session

    def run(self, names: list[str], feeds: dict[str, Any]) -> list[Any]:
        import numpy as np
        batch, length = feeds["input_ids"].shape
        shapes = {o.name: o.shape for o in self._session.get_outputs()}
        # named (symbolic) axes are the batch, then the sequence; numbered ones are fixed
        return [np.zeros([d if isinstance(d, int) else batch if n == 0 else length
                          for n, d in enumerate(shapes[name])], dtype=np.float32)
                for name in names]


def python_per_call_us(bundle: Path, sentences: list[str], repeats: int = 7) -> float:
    """Return the calling thread's CPU µs per predict([text]) with the model left out (min)."""
    from annotune.core.inference import Predictor
    predictor = Predictor(bundle)
    predictor.session = _ZeroSession(predictor.session)
    results = []
    for _ in range(repeats):
        started = time.thread_time()
        for text in sentences:
            predictor.predict([text])
        results.append((time.thread_time() - started) * 1e6 / len(sentences))
    return min(results)


def _feeds(bundle: Path, sentences: list[str]) -> list[dict[str, Any]]:
    import numpy as np

    from annotune.core.features import prepare_tokenizer
    tokenizer = prepare_tokenizer(bundle / "tokenizer.json")
    feeds = []
    for text in sentences:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids),
                      "token_type_ids": np.zeros_like(ids)})
    return feeds


def _session(bundle: Path, threads: int, extra: dict[str, str] | None = None,
             profile: str | None = None) -> Any:
    """Open the bundle's graph as core/runtime.py does, with ``extra`` config entries on top."""
    import onnxruntime as ort

    from annotune.core import runtime
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    for key, value in {**runtime.CPU_SPIN_CONFIG, **(extra or {})}.items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(str(bundle / "model.onnx"), options,
                                providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(runtime.CPU_DISABLED_OPTIMIZERS))


def operator_shares(bundle: Path, sentences: list[str], folder: Path) -> list[list[Any]]:
    """Return [operator, share of kernel time %, nodes] at one thread (onnxruntime's profiler)."""
    session = _session(bundle, 1, profile=str(folder / "profile"))
    feeds = _feeds(bundle, sentences)
    for feed in feeds:
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    kernel: dict[str, float] = {}
    nodes: dict[str, int] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            kernel[op] = kernel.get(op, 0.0) + event["dur"]
            nodes[op] = nodes.get(op, 0) + 1
    total = sum(kernel.values()) or 1.0
    return [[op, round(100 * spent / total, 1), nodes[op] // len(feeds)]
            for op, spent in sorted(kernel.items(), key=lambda item: -item[1])]


def thread_ways(bundle: Path, sentences: list[str], rounds: int) -> dict[str, float]:
    """Median ms of one run per way of threading, the ways alternating run by run."""
    ways = {"2 threads (as sessions open)": _session(bundle, 2),
            "2 threads, work in blocks": _session(bundle, 2, WORK_IN_BLOCKS),
            "1 thread": _session(bundle, 1)}
    feeds = _feeds(bundle, sentences)
    times: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(rounds):
        for feed in feeds:
            for way, session in ways.items():
                started = time.perf_counter()
                session.run(None, feed)
                times[way].append((time.perf_counter() - started) * 1000)
    return {way: round(statistics.median(spent), 3) for way, spent in times.items()}


def after_pause(bundle: Path, sentences: list[str], repeats: int = 5) -> dict[str, list[float]]:
    """CPU ms of the first calls after a 2 s sleep, after flushing the caches, and steady.

    One thread, so the calling thread's CPU time is the call's work: what a pause costs in
    work redone (cold caches) shows apart from what it costs in waiting for threads and cores.
    """
    import numpy as np

    from annotune.core.inference import Predictor
    predictor = Predictor(bundle, threads=1)
    flood = np.ones(32 * 2**20, dtype=np.float32)  # 128 MB: more than any CPU cache
    calls = sentences[:6]

    def cpu_ms() -> list[float]:
        spent = []
        for text in calls:
            started = time.thread_time()
            predictor.predict([text])
            spent.append((time.thread_time() - started) * 1000)
        return spent

    for text in sentences:
        predictor.predict([text])
    runs: dict[str, list[list[float]]] = {"steady": [], "after 2 s asleep": [],
                                          "after a cache flush": []}
    for _ in range(repeats):
        runs["steady"].append(cpu_ms())
        time.sleep(2)
        runs["after 2 s asleep"].append(cpu_ms())
        flushed_until = time.perf_counter() + 1
        while time.perf_counter() < flushed_until:
            flood.sum()
        runs["after a cache flush"].append(cpu_ms())
    return {way: [round(statistics.median(r[i] for r in found), 3) for i in range(len(calls))]
            for way, found in runs.items()}


def breakdown(args: argparse.Namespace, sentences: list[str]) -> None:
    """Print where one predict([text]) call of each bundle spends its time."""
    if not args.demo:
        sys.exit("--breakdown measures the bundles of `annotune demo`: give --demo DIR")
    targets = demo_targets(args.demo)
    load_before = load_average()
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="inference-breakdown-") as tmp:
        for name in ("onnx-fp32", "onnx-int8"):
            bundle = targets[name]
            found[name] = {"python_us": round(python_per_call_us(bundle, sentences), 1),
                           "operators": operator_shares(bundle, sentences, Path(tmp)),
                           "threads_ms": thread_ways(bundle, sentences, args.rounds),
                           "after_pause_cpu_ms": after_pause(bundle, sentences)}
    loads = f"load average {load_before}-{load_average()}"
    print_table(f"Python per predict([text]) call, the model left out (calling thread's CPU "
                f"µs, best of 7; {len(sentences)} sentences; {loads})",
                ["bundle", "µs"], [[name, f["python_us"]] for name, f in found.items()])
    for name, f in found.items():
        print_table(f"{name}: kernel time by operator, one thread ({len(sentences)} sentences)",
                    ["operator", "share %", "nodes"], f["operators"])
    ways = list(next(iter(found.values()))["threads_ms"])
    print_table(f"One run per sentence, the ways alternating run by run, median ms "
                f"({args.rounds} rounds; {loads})", ["bundle", *ways],
                [[name, *(f["threads_ms"][way] for way in ways)] for name, f in found.items()])
    print_table("CPU ms of the first six calls (one thread; median of 5 repeats)",
                ["bundle", "calls", *(f"call {n}" for n in range(1, 7))],
                [[name, way, *cpu] for name, f in found.items()
                 for way, cpu in f["after_pause_cpu_ms"].items()])
    print_json_line("inference_breakdown", {"hardware": hardware(), "sentences": len(sentences),
                                            "rounds": args.rounds, "bundles": str(args.demo),
                                            "load_average": loads, "results": found})


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        child(args)
        return
    quiet_transformers()
    base_model = resolve_base_model(args.base_model or default_base_model())
    sentences, long = load_texts(args)
    if args.breakdown:
        breakdown(args, sentences)
        return
    info = hardware()
    results: dict[str, Any] = {}
    cold: dict[str, Any] = {}
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="inference-speed-") as tmp:
        folder = Path(tmp)
        targets = (demo_targets(args.demo) if args.demo
                   else export_targets(folder, base_model, sentences))
        sizes = {name: model_bytes(target) for name, target in targets.items()}
        texts_file = folder / "texts.json"
        texts_file.write_text(json.dumps({"sentences": sentences, "long": long}))
        if not args.only_user_style:
            print(f"  loading {', '.join(RUNTIMES)} ...", file=sys.stderr, flush=True)
            processes: dict[str, RuntimeProcess] = {}
            try:
                for runtime in RUNTIMES:
                    processes[runtime] = RuntimeProcess(runtime, targets[runtime], texts_file,
                                                        args.threads)
                times = take_turns(processes, args.rounds)
            finally:
                for process in processes.values():
                    process.close()
            cold = {name: cold_start(targets[name], args.cold_starts)
                    for name in ("onnx-fp32", "onnx-int8")}
            results = summarise(times)
            for runtime in RUNTIMES:
                results[runtime]["threads"] = processes[runtime].threads
                results[runtime]["model_mb"] = round(sizes[runtime] / 2**20, 1)
        load_after = load_average()
        user = user_style(targets, texts_file, args.rounds)
    source = f"the demo's bundles in {args.demo}" if args.demo else "a fresh two-label head"
    if results:
        rows = []
        for runtime in RUNTIMES:
            r = results[runtime]
            speedup = ""
            if runtime != "torch-fp32":
                speedup = " / ".join(f"{r[w]['speedup']:.2f}x" for w in WORKLOADS)
            rows.append([runtime, *(r[w]["mean_ms"] for w in WORKLOADS), r["model_mb"],
                         speedup])
        print_table(f"CPU inference, ms per example, tokenization included ({info['cpu']}, "
                    f"{info['cpu_cores']} cores, threads {args.threads or 'default'}; "
                    f"{len(sentences)} dev sentences, {len(long)} texts of {LONG_TOKENS} "
                    f"tokens; {args.rounds} rounds of turns; {source}; load average "
                    f"{load_before}-{load_after})",
                    ["runtime", "batch 1 sentences", "batch 1 128 tok", "batch 32", "model MB",
                     "speed-up vs torch (b1 / b1-128 / b32; median of rounds)"], rows)
        print_table("Predictor cold start (fresh process, import to first prediction; median)",
                    ["bundle", "import to first prediction s", "process wall s",
                     "torch imported"],
                    [[name, c.get("import_to_first_prediction_s"), c.get("process_wall_s"),
                      c.get("torch_imported", c.get("error"))] for name, c in cold.items()])
    low, high = user["load_average"]
    print_table(f"User-style, batch 1: transformers' AutoTokenizer + eager PyTorch against "
                f"Predictor.predict([text]), default threads, ms per sentence ({source}; "
                f"{len(sentences)} sentences a turn, {args.rounds} rounds; load average "
                f"{low}-{high})",
                ["runtime", "threads", "median ms", "speed-up (median of rounds)", "range",
                 f"one call, first {FIRST_CALLS} of a turn (median ms)",
                 "one call, later (median ms)"],
                [[runtime, user[runtime]["threads"], user[runtime]["median_ms"],
                  user[runtime].get("speedup", ""), user[runtime].get("speedup_range", ""),
                  user[runtime]["first_calls_median_ms"], user[runtime]["later_calls_median_ms"]]
                 for runtime in USER_RUNTIMES])
    print_json_line("inference_speed", {"hardware": info, "sentences": len(sentences),
                                        "threads": args.threads, "rounds": args.rounds,
                                        "long_texts": len(long), "results": results,
                                        "cold_start": cold, "user_style": user,
                                        "bundles": source, "base_model": base_model,
                                        "load_average": [load_before, load_after]})


if __name__ == "__main__":
    main()
