"""Measure how fast annotune imports a large file into a new project (rows per second).

The script writes its own synthetic data (no real text is needed to time an import): N unique
short reviews made of random words, each with a label, as a JSONL file and as a CSV file. Each
format is then imported into a fresh project with ``import_file`` in its own process, which
also gives each import its own peak memory figure.

    python bench/import_speed.py                 # 1,000,000 rows
    python bench/import_speed.py --rows 20000    # a quick check
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO_ROOT, hardware, print_json_line, print_table

FORMATS = ("jsonl", "csv")
LABELS = ("negative", "positive")
WORDS = ("the film was a great slow dull funny warm cold plot actor story scene ending music "
         "moving boring clever sharp flat bright dark long short brilliant awful charming "
         "tense witty bland fresh tired honest loud quiet strange simple rich thin").split()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help="comma-separated: jsonl, csv")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the files and projects go (default: a temporary folder)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: one import
    parser.add_argument("--file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--project", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def synthetic_rows(n: int) -> Any:
    """Yield n unique (text, label) rows: 6-30 random words and the row number."""
    rng = random.Random(42)
    for i in range(n):
        words = rng.choices(WORDS, k=rng.randint(6, 30))
        yield f"review {i}: {' '.join(words)}.", LABELS[rng.randrange(2)]


def write_files(folder: Path, rows: int, formats: list[str]) -> dict[str, Path]:
    paths = {}
    if "jsonl" in formats:
        paths["jsonl"] = folder / "reviews.jsonl"
        with paths["jsonl"].open("w", encoding="utf-8") as handle:
            for text, label in synthetic_rows(rows):
                handle.write(json.dumps({"text": text, "label": label}) + "\n")
    if "csv" in formats:
        paths["csv"] = folder / "reviews.csv"
        with paths["csv"].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(synthetic_rows(rows))
    return paths


def child(args: argparse.Namespace) -> None:
    """Create a project and import one file into it; print the figures as one line."""
    started = time.perf_counter()
    from annotune.core.formats.importing import import_file
    from annotune.core.store import Project
    from annotune.core.tasks import TaskSettings
    project = Project.create(Path(args.project), task="text-classification",
                             settings=TaskSettings(labels=LABELS))
    ready, cpu = time.perf_counter(), time.process_time()
    report = import_file(project, Path(args.file))
    done, cpu = time.perf_counter(), time.process_time() - cpu  # both threads' CPU time
    examples = project.count()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    project.close()
    print("IMPORT " + json.dumps({
        "create_s": round(ready - started, 2), "import_s": round(done - ready, 2),
        "import_cpu_s": round(cpu, 2),
        "added": report.added, "annotated": report.annotated,
        "duplicates": report.duplicates, "examples_in_project": examples,
        "peak_rss_mib": round(peak, 1), **store_latency(Path(args.project))}), flush=True)


def store_latency(path: Path) -> dict[str, float]:
    """Time opening the imported project, the common counts and next_example (ms, median)."""
    from annotune.core.store import Project

    def median_ms(call: Any, repeat: int = 200) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return round(statistics.median(times) * 1000, 3)

    start = time.perf_counter()
    project = Project.open(path)
    figures = {"open_ms": round((time.perf_counter() - start) * 1000, 2)}
    for status in (None, "unlabeled", "accepted", "skipped"):
        figures[f"count_{status or 'all'}_ms"] = median_ms(lambda s=status: project.count(s))
    figures["next_unlabeled_ms"] = median_ms(lambda: project.next_example(after_id=500))
    figures["next_accepted_ms"] = median_ms(
        lambda: project.next_example(after_id=500, status="accepted"))
    start = time.perf_counter()
    project.save_annotation(7, {"label": LABELS[0]})
    figures["save_ms"] = round((time.perf_counter() - start) * 1000, 2)
    project.close()
    return figures


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        child(args)
        return
    formats = args.formats.split(",")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        sys.exit(f"unknown format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="import-speed-") as tmp:
        folder = args.work_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        paths = write_files(folder, args.rows, formats)
        print(f"wrote {args.rows:,} rows per format in {time.perf_counter() - started:.1f} s",
              flush=True)
        results: dict[str, Any] = {}
        for name, path in paths.items():
            project = folder / f"{name}.annotune"
            for leftover in folder.glob(f"{name}.annotune*"):
                leftover.unlink()
            print(f"  importing {path.name} ...", file=sys.stderr, flush=True)
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--one", name,
                 "--file", str(path), "--project", str(project)],
                capture_output=True, text=True, cwd=REPO_ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
            line = next((x for x in done.stdout.splitlines() if x.startswith("IMPORT ")), None)
            if line is None:
                tail = (done.stderr or done.stdout).strip().splitlines()
                results[name] = {"error": tail[-1] if tail else "failed"}
                continue
            result = json.loads(line[7:])
            result["file_mib"] = round(path.stat().st_size / 2**20, 1)
            result["project_mib"] = round(sum(p.stat().st_size for p in
                                              folder.glob(f"{name}.annotune*")) / 2**20, 1)
            result["rows_per_s"] = round(args.rows / result["import_s"])
            results[name] = result
    info = hardware()
    print_table(f"import of {args.rows:,} labeled rows into a new project ({info['cpu']}, "
                f"{info['cpu_cores']} cores)",
                ["format", "file MiB", "import s", "CPU s", "rows/s", "added", "project MiB",
                 "peak RSS MiB", "error"],
                [[name, r.get("file_mib"), r.get("import_s"), r.get("import_cpu_s"),
                  r.get("rows_per_s"),
                  r.get("added"), r.get("project_mib"), r.get("peak_rss_mib"),
                  r.get("error", "")] for name, r in results.items()])
    print_table("the imported project afterwards (ms; counts and next_example: median of 200)",
                ["format", "open", "count all", "unlabeled", "accepted", "skipped",
                 "next unlabeled", "next accepted", "first save"],
                [[name, r.get("open_ms"), r.get("count_all_ms"), r.get("count_unlabeled_ms"),
                  r.get("count_accepted_ms"), r.get("count_skipped_ms"),
                  r.get("next_unlabeled_ms"), r.get("next_accepted_ms"), r.get("save_ms")]
                 for name, r in results.items() if "error" not in r])
    print_json_line("import_speed", {"rows": args.rows, "hardware": info, "results": results})


if __name__ == "__main__":
    main()
