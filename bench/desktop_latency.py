"""Time the desktop on a project of 1,000,000 examples (a benchmark, not a test).

Builds the project once through the store API (one bulk add_examples transaction), then
measures, offscreen:

* opening the project and showing the first unlabeled example in the main window;
* from a label key press to the next example shown (the decision committed to SQLite),
  over many presses: median and p99.

Usage: python bench/desktop_latency.py [--examples N] [--presses N] [--dir FOLDER]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

WORDS = ("service", "quick", "slow", "friendly", "price", "delivery", "broken", "great",
         "awful", "support", "refund", "again", "never", "always", "staff", "order")


def build(path: Path, count: int) -> float:
    """Create a text-classification project with ``count`` examples; return seconds taken."""
    from annotune.core.formats.base import ImportRecord
    from annotune.core.store import Project
    from annotune.core.tasks import TaskSettings

    started = time.perf_counter()
    project = Project.create(path, task="text-classification",
                             settings=TaskSettings(labels=("negative", "positive")))

    def records():
        for i in range(count):
            words = " ".join(WORDS[(i >> shift) % len(WORDS)] for shift in range(0, 24, 3))
            yield ImportRecord(fields={"text": f"review {i}: {words}"}, line=i + 1)

    summary = project.add_examples(records(), source="bench")
    project.close()
    assert summary.added == count, summary
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(path: Path, presses: int) -> dict[str, float]:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from annotune.desktop.app import application
    from annotune.desktop.main_window import MainWindow

    app = application()
    window = MainWindow()
    window.show()
    app.processEvents()
    started = time.perf_counter()
    window.open_project(path)
    labeling = window.views["label"]
    labeling.repaint()
    app.processEvents()
    open_s = time.perf_counter() - started
    assert labeling.current is not None

    window.activateWindow()
    app.processEvents()
    editor = labeling.editor
    editor.setFocus()
    latencies = []
    for n in range(presses):
        before = labeling.current.id
        key = Qt.Key.Key_1 if n % 2 else Qt.Key.Key_2
        t0 = time.perf_counter()
        QTest.keyClick(editor, key)
        labeling.repaint()  # the next example painted, not just queued
        latencies.append(time.perf_counter() - t0)
        assert labeling.current.id != before, "the key press did not advance"
    saved = window.project.count(status="accepted")
    window.close()
    window.deleteLater()
    QApplication.processEvents()
    del window, labeling, editor
    return {"open_s": open_s, "median_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * percentile(latencies, 0.99), "max_ms": 1000 * max(latencies),
            "saved": saved}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--presses", type=int, default=500)
    parser.add_argument("--dir", type=Path, help="keep the project here (default: a temp dir)")
    args = parser.parse_args(argv)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="annotune-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{args.examples}.annotune"
    if not path.exists():
        seconds = build(path, args.examples)
        print(f"built {args.examples:,} examples in {seconds:.1f} s "
              f"({args.examples / seconds:,.0f} examples/s, "
              f"{path.stat().st_size / 1e6:,.0f} MB)")
    figures = measure(path, args.presses)
    print(f"open project + first unlabeled example shown: {figures['open_s'] * 1000:.0f} ms")
    print(f"label key -> saved and next example shown, {args.presses} presses: "
          f"median {figures['median_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
          f"max {figures['max_ms']:.1f} ms ({figures['saved']} saved)")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # skip interpreter teardown: PySide6 may abort while finalizing widgets created outside an
    # event loop, which would hide the figures above behind a fatal-error message
    os._exit(code)
