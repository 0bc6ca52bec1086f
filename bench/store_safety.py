"""Time what keeps a project file whole: open checks, quick_check, backup, removing a killed import.

Builds a project of N synthetic labeled reviews (default 1,000,000, the rows of
bench/import_speed.py), then measures:

* ``Project.open`` of the large file (the cheap check: small tables, edges, counters);
* ``PRAGMA quick_check`` of the whole file (what opening a file up to 64 MiB costs, and what a
  large import checks first);
* ``Project.backup`` of the open project (copy, strip unfinished imports, check, rename);
* an import of the same number of rows killed at its last steps (every row written, not yet
  visible), then ``Project.open``, which removes what it wrote.

    python bench/store_safety.py                  # 1,000,000 rows
    python bench/store_safety.py --rows 200000
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from common import hardware, print_json_line, print_table
from import_speed import LABELS, write_files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    from annotune.core.formats.importing import import_file
    from annotune.core.store import Project, integrity
    from annotune.core.tasks import TaskSettings

    with tempfile.TemporaryDirectory(prefix="store-safety-") as tmp:
        folder = args.work_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        source = write_files(folder, args.rows, ["jsonl"])["jsonl"]
        path, killed = folder / "big.annotune", folder / "killed.annotune"
        for leftover in [*folder.glob("big.annotune*"), *folder.glob("killed.annotune*"),
                         *folder.glob("copy.annotune*")]:
            leftover.unlink()
        settings = TaskSettings(labels=LABELS)
        with Project.create(path, task="text-classification", settings=settings) as project:
            import_file(project, source)
        mib = path.stat().st_size / 2**20
        figures: dict[str, float] = {}
        opens = []
        for _ in range(5):
            started = time.perf_counter()
            project = Project.open(path)
            opens.append(time.perf_counter() - started)
            project.close()
        figures["open_ms"] = round(1000 * sorted(opens)[2], 1)
        with Project.open(path) as project:
            checks = []
            for _ in range(2):
                started = time.perf_counter()
                integrity.check_whole(project.db)
                checks.append(time.perf_counter() - started)
            figures["quick_check_s"] = round(min(checks), 2)
            started = time.perf_counter()
            project.backup(folder / "copy.annotune")
            figures["backup_s"] = round(time.perf_counter() - started, 1)

        Project.create(killed, task="text-classification", settings=settings).close()
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import time
            from pathlib import Path
            from annotune.core.formats.importing import import_file
            from annotune.core.store import Project, bulk
            def stop(self):
                print("every row written", flush=True)
                time.sleep(3600)
            bulk._Steps._index_hashes = stop  # the kill comes before the last steps
            import_file(Project.open({str(killed)!r}), Path({str(source)!r}))
        """)], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "every row written"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        started = time.perf_counter()
        with Project.open(killed) as project:
            figures["open_after_kill_s"] = round(time.perf_counter() - started, 1)
            assert project.count() == 0
    info = hardware()
    print_table(f"a project of {args.rows:,} examples ({mib:.0f} MiB; {info['cpu']}, "
                f"{info['cpu_cores']} cores, load {os.getloadavg()[0]:.1f})",
                ["open ms (median of 5)", "quick_check s", "backup s",
                 "open after a killed import s"],
                [[figures["open_ms"], figures["quick_check_s"], figures["backup_s"],
                  figures["open_after_kill_s"]]])
    print_json_line("store_safety", {"rows": args.rows, "project_mib": round(mib),
                                     **figures, "hardware": info})


if __name__ == "__main__":
    main()
