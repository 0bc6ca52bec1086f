"""Time the desktop app from launch to its window on screen, and measure the app folder.

    .venv/bin/python bench/app_startup.py [--app dist/annotune/annotune] [--runs 7]

Each run starts the program with ``--self-test startup`` (offscreen), which prints a line once
the main window is shown and quits; the time from launch to that line is the start-up time.
Prints the median and the range, and the size of the app folder when it is a frozen app.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_once(program: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = subprocess.Popen([*program, "--self-test", "startup"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
    assert process.stdout is not None
    for line in process.stdout:
        if '"step": "startup"' in line:
            elapsed = time.perf_counter() - started
            break
    else:
        raise SystemExit(f"{program[0]} ended without showing its window")
    process.wait(60)
    return elapsed


def folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*")
               if p.is_file() and not p.is_symlink()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", type=Path, default=ROOT / "dist" / "annotune" / "annotune",
                        help="the program to start (default: the frozen app from make app)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not args.app.exists():
        raise SystemExit(f"{args.app} does not exist: build it with `make app`")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "ANNOTUNE_DATA_DIR": home,
               "XDG_CONFIG_HOME": home}
        start_once([str(args.app)], env)  # the first start reads the files from disk
        times = [start_once([str(args.app)], env) for _ in range(args.runs)]
    print(f"program      {args.app}")
    print(f"start-up     median {statistics.median(times):.2f} s over {len(times)} runs "
          f"(range {min(times):.2f}–{max(times):.2f} s; after one warm-up start)")
    if (args.app.parent / "_internal").is_dir():
        print(f"app folder   {folder_mib(args.app.parent):.0f} MiB")
    print(f"machine      {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
