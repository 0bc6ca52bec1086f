"""Measure label saves and the desktop while a large import runs in another process.

Three programs share one project, as on a real desk:

* an importer process runs ``import_file`` on N synthetic labeled reviews (default 1,000,000;
  the same rows as bench/import_speed.py), as ``annotune import`` does;
* a saver process saves a label every ``--save-every-ms`` through ``Project.save_annotation``
  (as the training job or a script would) and times each call: its wait for the write lock
  plus the write;
* this process drives the real labeling view offscreen (label key presses every
  ``--press-every-ms``) and records how long the GUI thread was ever blocked (a 5 ms timer's
  longest delay), how long each key press took to handle, and how long each decision took to
  be written by the save thread.

Afterwards it checks that the import is whole (every row, once) and that every label the
saver and the view confirmed is in the file.

    python bench/concurrent_import.py                    # 1,000,000 rows
    python bench/concurrent_import.py --rows 100000      # a quick run
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from common import REPO_ROOT, hardware, print_json_line, print_table  # noqa: E402
from import_speed import LABELS, write_files  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows the import adds")
    parser.add_argument("--existing", type=int, default=20_000,
                        help="unlabeled examples in the project before the import")
    parser.add_argument("--save-every-ms", type=float, default=30)
    parser.add_argument("--press-every-ms", type=float, default=60)
    parser.add_argument("--no-desktop", action="store_true", help="only the two processes")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--role", choices=("import", "save"), help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stop", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary_ms(values: list[float]) -> dict[str, float]:
    """Median, p90, p99 and max of durations in seconds, as milliseconds."""
    return {"n": len(values),
            "median_ms": round(1000 * statistics.median(values), 1) if values else None,
            "p90_ms": round(1000 * percentile(values, 0.90), 1),
            "p99_ms": round(1000 * percentile(values, 0.99), 1),
            "max_ms": round(1000 * max(values, default=float("nan")), 1)}


# -- child processes -----------------------------------------------------------------------------
def run_import(args: argparse.Namespace) -> None:
    from annotune.core.formats.importing import import_file
    from annotune.core.store import Project

    project = Project.open(args.project)
    steps: dict[str, Any] = {}
    add_examples = project.add_examples

    def counted(*positional: Any, **named: Any) -> Any:
        summary = add_examples(*positional, **named)
        steps.update(steps=getattr(summary, "steps", None),
                     longest_step_s=getattr(summary, "longest_step_s", None))
        return summary

    project.add_examples = counted  # the import's transactions, for the figures
    print("READY", flush=True)
    started = time.perf_counter()
    try:
        report = import_file(project, args.file)
        result = {"import_s": round(time.perf_counter() - started, 2), "added": report.added,
                  **steps}
    except Exception as error:  # the figures say how it failed
        result = {"import_s": round(time.perf_counter() - started, 2),
                  "error": f"{type(error).__name__}: {error}"}
    project.close()
    args.out.write_text(json.dumps(result))


def run_saver(args: argparse.Namespace) -> None:
    """Save a label every few milliseconds until told to stop; time every call."""
    from annotune.core.store import Project

    project = Project.open(args.project)
    existing = project.count()
    print("READY", flush=True)
    waits, errors, saved = [], [], []
    example_id = existing  # from the last example down; the view labels from the first up
    interval = args.save_every_ms / 1000
    while not args.stop.exists() and example_id > 0:
        label = LABELS[example_id % 2]
        started = time.perf_counter()
        try:
            project.save_annotation(example_id, {"label": label})
            waits.append(time.perf_counter() - started)
            saved.append([example_id, label])
        except Exception as error:  # counted: the point is how often this happens
            waits.append(time.perf_counter() - started)
            errors.append(f"{type(error).__module__}.{type(error).__name__}: {error}")
        example_id -= 1
        time.sleep(interval)
    project.close()
    args.out.write_text(json.dumps({"waits": waits, "errors": errors, "saved": saved}))


# -- the desktop, in this process ----------------------------------------------------------------
class Desktop:
    """The real labeling view, offscreen: key presses on a timer, a 5 ms heartbeat."""

    HEARTBEAT_MS = 5

    def __init__(self, project_path: Path, press_every_ms: float):
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication

        from annotune.core.plugins import registry
        from annotune.core.store import Project
        from annotune.desktop.editors.label_editor import LabelEditor
        from annotune.desktop.labeling import LabelingView

        self.app = QApplication.instance() or QApplication([])
        # PySide6 6.12.0 hands back True (from emit) and None (from every method returning
        # nothing) without a reference of their own: each call takes one, and a long run
        # would free them and abort. Hold plenty (PySide6 6.11 has no such leak).
        self._references = [True] * 2_000_000 + [None] * 20_000_000
        gc.freeze()  # or each full collection would walk that list: a 100 ms stall
        self.project = Project.open(project_path)
        task = registry().task(self.project.task_name)
        self.view = LabelingView(self.project, task, LabelEditor(task, self.project.settings))
        self.view.resize(900, 600)
        self.view.show()
        self.view.start()
        self.press_times: list[float] = []  # GUI thread time to handle one key press
        self.written: list[float] = []  # key press to decision written (save thread)
        self.failed: list[str] = []
        self.confirmed: dict[int, str] = {}
        saves = getattr(self.view, "saves", None)
        if saves is not None:
            saves.finished.connect(self._written)
            saves.failed.connect(lambda job, error: self.failed.append(str(error)))
        self.gaps: list[float] = []
        self.last_tick = time.perf_counter()
        self.heartbeat = QTimer()
        self.heartbeat.setInterval(self.HEARTBEAT_MS)
        self.heartbeat.timeout.connect(self._tick)
        self.presser = QTimer()
        self.presser.setInterval(int(press_every_ms))
        self.presser.timeout.connect(self._press)
        self.presses = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last_tick)
        self.last_tick = now

    def _written(self, job: Any, _result: Any) -> None:
        if job.kind == "save":
            self.written.append(time.perf_counter() - job.submitted)

    def _press(self) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        current = self.view.current
        if current is None:
            return
        key = Qt.Key.Key_1 if self.presses % 2 else Qt.Key.Key_2
        label = LABELS[0] if self.presses % 2 else LABELS[1]
        started = time.perf_counter()
        QTest.keyClick(self.view.editor, key)
        self.press_times.append(time.perf_counter() - started)
        self.presses += 1
        if getattr(self.view, "saves", None) is None:  # an older view saves synchronously
            stored = self.project.annotation(current.id)
            if stored is not None and stored.payload == {"label": label}:
                self.confirmed[current.id] = label
        else:
            self.confirmed[current.id] = label

    def run_until(self, done: Any) -> None:
        from PySide6.QtCore import QEventLoop, QTimer

        self.last_tick = time.perf_counter()
        self.heartbeat.start()
        self.presser.start()
        loop, poll = QEventLoop(), QTimer()
        poll.timeout.connect(lambda: loop.quit() if done() else None)
        poll.start(20)
        loop.exec()
        poll.stop()
        self.presser.stop()
        wait = getattr(self.view, "wait_for_saves", None)
        if wait is not None:
            wait(120)
        self.heartbeat.stop()

    def longest_block_ms(self) -> float:
        return max(0.0, 1000 * max(self.gaps, default=0.0) - self.HEARTBEAT_MS)

    def close(self) -> None:
        closer = getattr(self.view, "close_saves", None)
        if closer is not None:
            closer(60)
        self.project.close()


# -- the run ---------------------------------------------------------------------------------
def build_project(path: Path, existing: int) -> None:
    from annotune.core.formats.base import ImportRecord
    from annotune.core.store import Project
    from annotune.core.tasks import TaskSettings

    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=LABELS)) as project:
        project.add_examples(ImportRecord(fields={"text": f"existing example {i}"}, line=i + 1)
                             for i in range(existing))


def child(role: str, args: argparse.Namespace, project: Path, folder: Path, **extra: Path
          ) -> tuple[subprocess.Popen[str], Path]:
    out = folder / f"{role}.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--role", role,
               "--project", str(project), "--out", str(out),
               "--save-every-ms", str(args.save_every_ms)]
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout.readline().strip() == "READY", f"{role} did not start"
    return process, out


def verify(project_path: Path, expected: int, labels: dict[int, str]) -> dict[str, Any]:
    """Check the import is whole and every confirmed label is stored."""
    from annotune.core.store import Project

    with Project.open(project_path) as project:
        examples = project.count()
        missing = [i for i, label in labels.items()
                   if (project.annotation(i) is None
                       or project.annotation(i).payload != {"label": label})]
        distinct = project.db.execute("SELECT COUNT(DISTINCT hash) FROM examples").fetchone()[0]
    return {"examples": examples, "expected": expected, "whole": examples == expected == distinct,
            "labels_checked": len(labels), "labels_missing": len(missing)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.role == "import":
        run_import(args)
        return
    if args.role == "save":
        run_saver(args)
        return
    with tempfile.TemporaryDirectory(prefix="concurrent-import-") as tmp:
        folder = args.work_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        source = write_files(folder, args.rows, ["jsonl"])["jsonl"]
        project = folder / "shared.annotune"
        for leftover in folder.glob("shared.annotune*"):
            leftover.unlink()
        build_project(project, args.existing)
        stop = folder / "stop"
        stop.unlink(missing_ok=True)
        print(f"project of {args.existing:,} examples; importing {args.rows:,} rows while "
              "saving labels", file=sys.stderr, flush=True)
        desktop = None if args.no_desktop else Desktop(project, args.press_every_ms)
        saver, saver_out = child("save", args, project, folder, stop=stop)
        importer, importer_out = child("import", args, project, folder, file=source)
        started = time.perf_counter()
        if desktop is not None:
            desktop.run_until(lambda: importer.poll() is not None)
        importer.wait()
        wall = time.perf_counter() - started
        stop.touch()
        saver.wait()
        imported = json.loads(importer_out.read_text())
        saved = json.loads(saver_out.read_text())
        labels = {example_id: label for example_id, label in saved["saved"]}
        if desktop is not None:
            desktop.close()
            labels.update(desktop.confirmed)
        check = verify(project, args.existing + imported.get("added", 0), labels)
    results = {"rows": args.rows, "existing": args.existing, "wall_s": round(wall, 1),
               "import": imported, "saver": {**summary_ms(saved["waits"]),
                                             "errors": len(saved["errors"]),
                                             "first_error": (saved["errors"] or [None])[0]},
               "check": check}
    if desktop is not None:
        results["desktop"] = {"longest_block_ms": round(desktop.longest_block_ms(), 1),
                              "presses": desktop.presses,
                              "press_handling": summary_ms(desktop.press_times),
                              "written_after_press": summary_ms(desktop.written),
                              "failed": len(desktop.failed)}
    info = hardware()
    print_table(f"label saves while importing {args.rows:,} rows in another process "
                f"({info['cpu']}, {info['cpu_cores']} cores, load {os.getloadavg()[0]:.1f})",
                ["who", "saves", "median ms", "p90 ms", "p99 ms", "max ms", "errors"],
                [["saver process (save_annotation call)", *[results["saver"][k] for k in
                  ("n", "median_ms", "p90_ms", "p99_ms", "max_ms", "errors")]]] +
                ([["desktop: key press handled (GUI thread)",
                   *[results["desktop"]["press_handling"][k] for k in
                     ("n", "median_ms", "p90_ms", "p99_ms", "max_ms")], ""],
                  ["desktop: press to decision written",
                   *[results["desktop"]["written_after_press"][k] for k in
                     ("n", "median_ms", "p90_ms", "p99_ms", "max_ms")],
                   results["desktop"]["failed"]]] if desktop is not None else []))
    print_table("the import and the project afterwards",
                ["import s", "added", "steps", "longest step s", "error",
                 "GUI thread longest block ms", "whole", "labels checked", "labels missing"],
                [[imported.get("import_s"), imported.get("added"), imported.get("steps"),
                  imported.get("longest_step_s"), imported.get("error", ""),
                  results.get("desktop", {}).get("longest_block_ms"), check["whole"],
                  check["labels_checked"], check["labels_missing"]]])
    print_json_line("concurrent_import", {**results, "hardware": info})
    if desktop is not None:
        # Skip interpreter shutdown: freeing the references held for PySide6's emit (see
        # Desktop) would end the run with an abort after the figures are out.
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
