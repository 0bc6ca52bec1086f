"""Measure pre-annotation speed: a bundle's predictions stored for N unlabeled examples.

The project holds N synthetic review-like sentences (the ones bench/import_speed.py writes; no
real text is needed to time inference), all unlabeled. The model is the bundled base model
with a freshly initialised two-label head (accuracy is irrelevant to speed), saved as a run
folder and exported with annotune's export, as bench/inference_speed.py does: an int8 bundle,
and an fp32 one with --fp32. Each bundle pre-annotates its own copy of the project in a fresh
process (torch never imported there), through ``core.preannotate.preannotate``, which reports
where the time goes: reading the store, predicting, writing the predictions.

    python bench/preannotate_speed.py                      # 100,000 examples, int8
    python bench/preannotate_speed.py --examples 2000      # a quick check
    python bench/preannotate_speed.py --fp32 --profile 25  # also fp32; top 25 functions
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    SST2_LABELS,
    default_base_model,
    hardware,
    print_json_line,
    print_table,
    quiet_transformers,
    resolve_base_model,
    run_child,
)
from import_speed import synthetic_rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000,
                        help="unlabeled examples in the project (default 100,000)")
    parser.add_argument("--fp32", action="store_true",
                        help="also measure the fp32 bundle (default: int8 only)")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="the Predictor's batch size (preannotate's default: 64)")
    parser.add_argument("--threads", type=int, default=None,
                        help="onnxruntime threads (default: one per physical core)")
    parser.add_argument("--base-model", default=None,
                        help="base model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="run under cProfile and print the N most expensive functions")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the project and bundles go (default: a temporary folder)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: one bundle
    parser.add_argument("--project", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- set-up (parent) -----------------------------------------------------------------------------

def build_project(path: Path, count: int) -> float:
    """Create a text-classification project of ``count`` unlabeled examples; return seconds."""
    from annotune.core.formats.base import ImportRecord
    from annotune.core.store import Project
    from annotune.core.tasks import TaskSettings

    started = time.perf_counter()
    records = (ImportRecord(fields={"text": text}, line=n + 1)
               for n, (text, _) in enumerate(synthetic_rows(count)))
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=SST2_LABELS)) as project:
        summary = project.add_examples(records, source="synthetic")
    if summary.added != count:
        sys.exit(f"the project holds {summary.added} examples, expected {count}")
    return time.perf_counter() - started


def export_bundles(folder: Path, base_model: str, fp32: bool) -> dict[str, Path]:
    """Export the base model with a fresh two-label head: int8, and fp32 when asked.

    Bundles already in ``folder`` (a kept --work-dir) are used again.
    """
    from inference_speed import make_run

    from annotune.core.export import export_run
    wanted = {"int8": True, **({"fp32": False} if fp32 else {})}
    bundles = {name: folder / f"bundle-{name}" for name in wanted}
    missing = [name for name, bundle in bundles.items()
               if not (bundle / "manifest.json").is_file()]
    if missing:
        run = folder / "run"
        if not (run / "run.json").is_file():
            make_run(folder, base_model, [text for text, _ in synthetic_rows(32)])
        for name in missing:
            export_run(run, bundles[name], quantize=wanted[name])
    return bundles


# -- one bundle (child) --------------------------------------------------------------------------

def child(args: argparse.Namespace) -> None:
    """Pre-annotate the project with one bundle; print the figures as one line."""
    from annotune.core.inference import Predictor
    from annotune.core.preannotate import preannotate
    from annotune.core.store import Project

    started = time.perf_counter()
    predictor = Predictor(args.one, threads=args.threads, batch_size=args.batch_size)
    load_s = time.perf_counter() - started
    timings: dict[str, float] = {}
    profiler = None
    if args.profile:
        import cProfile
        profiler = cProfile.Profile()
    with Project.open(args.project) as project:
        started, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        count = preannotate(project, args.one, predictor=predictor, timings=timings)
        if profiler is not None:
            profiler.disable()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        stored = project.db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    if profiler is not None:
        import pstats
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(args.profile)
    peak = peak_rss_mib()
    options = predictor.session.get_session_options()
    print("PREANNOTATE " + json.dumps({
        "examples": count, "stored": stored, "load_s": round(load_s, 3),
        "wall_s": round(wall, 3), "cpu_s": round(cpu, 2),
        "examples_per_s": round(count / wall, 1) if wall else None,
        **{key: round(value, 3) for key, value in timings.items()},
        "threads": options.intra_op_num_threads, "batch_size": args.batch_size,
        "torch_imported": "torch" in sys.modules, "peak_rss_mib": peak}), flush=True)


def peak_rss_mib() -> float | None:
    """Return this process's peak resident memory (MiB), or None where /proc is missing.

    Not getrusage: Linux keeps ru_maxrss across exec, so a child would report its parent's
    peak (torch and the export) instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


# -- the comparison (parent) ---------------------------------------------------------------------

def preannotate_in_child(bundle: Path, project: Path, args: argparse.Namespace
                         ) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--one", str(bundle),
               "--project", str(project), "--batch-size", str(args.batch_size)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.profile:
        command += ["--profile", str(args.profile)]
    line, _, error = run_child(command, "PREANNOTATE ", echo_stderr=bool(args.profile))
    return json.loads(line) if line is not None else {"error": error}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        child(args)
        return
    quiet_transformers()
    base_model = resolve_base_model(args.base_model or default_base_model())
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="preannotate-speed-") as tmp:
        folder = args.work_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print("  exporting ...", file=sys.stderr, flush=True)
        bundles = export_bundles(folder / "export", base_model, args.fp32)
        template = folder / "template.annotune"
        for leftover in folder.glob("*.annotune*"):
            leftover.unlink()
        seconds = build_project(template, args.examples)
        print(f"built {args.examples:,} unlabeled examples in {seconds:.1f} s", flush=True)
        for name, bundle in bundles.items():
            project = folder / f"{name}.annotune"
            shutil.copyfile(template, project)  # closed: the WAL was checkpointed into it
            print(f"  pre-annotating with the {name} bundle ...", file=sys.stderr, flush=True)
            results[name] = preannotate_in_child(bundle, project, args)
    info = hardware()
    rows = []
    for name, r in results.items():
        rows.append([name, r.get("examples"), r.get("wall_s"), r.get("examples_per_s"),
                     r.get("read_s"), r.get("predict_s"), r.get("write_s"), r.get("cpu_s"),
                     r.get("threads"), r.get("error", "")])
    print_table(f"pre-annotation of {args.examples:,} unlabeled examples ({info['cpu']}, "
                f"{info['cpu_cores']} cores, batch {args.batch_size})",
                ["bundle", "examples", "wall s", "examples/s", "read s", "predict s",
                 "write s", "CPU s", "threads", "error"], rows)
    print_json_line("preannotate_speed", {"examples": args.examples, "hardware": info,
                                          "batch_size": args.batch_size,
                                          "threads": args.threads, "base_model": base_model,
                                          "results": results})


if __name__ == "__main__":
    main()
