"""Measure what checking a bundle costs: the checks alone, and a Predictor's cold start.

Every file a Predictor opens is checked before it is opened (names, size, sha256, the graph's
external data). This prints, for one bundle:

* the checks alone (``verify_bundle``: hashing every file and reading the graph's external data
  references), median of --repeats calls in this process (files in the page cache);
* the sha256 of each file alone, for comparison;
* a Predictor's cold start in fresh processes (import of annotune.core.inference to a ready
  Predictor, the checks included), median and range of --cold-starts processes.

Without --bundle the bundled all-MiniLM-L6-v2 is exported with a fresh two-label head into a
temporary folder first (needs the training dependencies; the bundle is what users get).

    python bench/bundle_checks.py --cold-starts 7
    python bench/bundle_checks.py --bundle path/to/bundle
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import default_base_model, print_json_line, print_table

CHILD = """
import json, sys, time
started = time.perf_counter()
from annotune.core.inference import Predictor
predictor = Predictor(sys.argv[1])
ready = time.perf_counter()
predictor.predict(["warm up the session"])
print(json.dumps({"cold_start_s": ready - started}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=None,
                        help="bundle folder (default: export the bundled base model)")
    parser.add_argument("--repeats", type=int, default=9, help="verify_bundle calls (median)")
    parser.add_argument("--cold-starts", type=int, default=5,
                        help="fresh processes that build a Predictor (median)")
    return parser.parse_args(argv)


def export_default(folder: Path) -> Path:
    """Export the bundled base model with a fresh two-label head; return the bundle folder."""
    from inference_speed import make_run

    from annotune.core.export import export_run
    run = make_run(folder, default_base_model(), ["a short text to check parity on"])
    return export_run(run, folder / "bundle").bundle_dir


def median_time(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cold_starts(bundle: Path, count: int) -> list[float]:
    """Build a Predictor in ``count`` fresh processes; return their start-up seconds."""
    figures = []
    for _ in range(count):
        result = subprocess.run([sys.executable, "-c", CHILD, str(bundle)], check=True,
                                capture_output=True, text=True)
        figures.append(json.loads(result.stdout.strip().splitlines()[-1])["cold_start_s"])
    return figures


def main(argv: list[str] | None = None) -> None:
    from annotune.core import bundle as bundle_files

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="annotune-bundle-checks-") as scratch:
        folder = args.bundle or export_default(Path(scratch))
        manifest = bundle_files.verify_bundle(folder)  # also warms the page cache
        rows = []
        for name, entry in manifest["files"].items():
            seconds = median_time(lambda n=name: bundle_files.sha256_file(Path(folder) / n),
                                  args.repeats)
            rows.append((f"sha256 {name}", f"{entry['bytes'] / 1e6:.1f} MB",
                         f"{seconds * 1e3:.1f} ms"))
        checks = median_time(lambda: bundle_files.verify_bundle(folder), args.repeats)
        rows.append(("verify_bundle (all checks)", "", f"{checks * 1e3:.1f} ms"))
        starts = cold_starts(Path(folder), args.cold_starts)
        rows.append(("Predictor cold start (median)", "",
                     f"{statistics.median(starts) * 1e3:.0f} ms "
                     f"(range {min(starts) * 1e3:.0f}-{max(starts) * 1e3:.0f})"))
        print_table(f"bundle checks: {folder}", ("step", "size", "time"), rows)
        print_json_line("bundle_checks", {
            "verify_bundle_ms": round(checks * 1e3, 2),
            "cold_start_ms": [round(s * 1e3, 1) for s in starts]})


if __name__ == "__main__":
    main()
