"""Time the desktop on a project of 1,000,000 examples (a benchmark, not a test).

Builds the project once through the store API (one bulk add_examples transaction), then
measures, offscreen:

* opening the project and showing the first unlabeled example in the main window;
* from a label key press to the next example shown (the decision committed to SQLite),
  over many presses: median and p99;
* with --during-preannotate, the same presses again while the Try-it panel pre-annotates the
  same project on its worker thread with an int8 bundle (the bundled base model with a fresh
  two-label head, exported as bench/preannotate_speed.py does), and how far the pre-annotation
  got meanwhile. A 10 ms timer also records how late the event loop served it (the longest
  stall) in both phases.

Usage: python bench/desktop_latency.py [--examples N] [--presses N] [--dir FOLDER]
       python bench/desktop_latency.py --examples 20000 --presses 200 --during-preannotate
"""

from __future__ import annotations

import argparse
import json
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


class Heartbeat:
    """Record how late a 10 ms timer fires: the event loop's stalls, whatever caused them."""

    INTERVAL_MS = 10

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(self.INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.last = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now

    def start(self) -> None:
        self.gaps = []
        self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        """Stop; return the longest wait beyond the interval, in milliseconds."""
        self.timer.stop()
        return max(0.0, 1000 * max(self.gaps, default=0.0) - self.INTERVAL_MS)


SAVES_DRAIN_S = 60.0  # how long a phase waits for its queued decisions after the last press


def press_labels(app, labeling, presses: int, interval_ms: int
                 ) -> tuple[list[float], dict[str, int]]:
    """Press the label keys ``presses`` times; return the latencies (s) and the save counts.

    The view hands each decision to its save thread (desktop/save_queue.py) and moves on at
    once, so a moved view proves nothing about the write. A decision did not save when the
    queue reported it refused (``saveFailed``), or when it is still queued once the queue has
    had SAVES_DRAIN_S to write it after the last press. A press that leaves the same example
    shown was refused before it reached the queue; it is counted too, and not timed.
    ``pending_after_presses`` is how many decisions the queue still held at the last press.
    """
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    editor = labeling.editor
    editor.setFocus()
    refused: list[object] = []
    labeling.saveFailed.connect(lambda kind, example_id, error: refused.append(example_id))
    latencies, not_moved = [], 0
    for n in range(presses):
        before = labeling.current.id
        key = Qt.Key.Key_1 if n % 2 else Qt.Key.Key_2
        t0 = time.perf_counter()
        QTest.keyClick(editor, key)
        labeling.repaint()  # the next example painted, not just queued
        if labeling.current.id != before:
            latencies.append(time.perf_counter() - t0)
        else:
            not_moved += 1
        if interval_ms:
            QTest.qWait(interval_ms)  # a person's pause; queued events (progress) run here
        else:
            app.processEvents()
    pending = labeling.saves.outstanding()
    labeling.wait_for_saves(SAVES_DRAIN_S)
    unsaved = labeling.saves.outstanding()
    labeling.saveFailed.disconnect()
    return latencies, {"failed_saves": not_moved + len(refused) + unsaved,
                       "refused": len(refused), "unsaved_at_end": unsaved,
                       "pending_after_presses": pending}


def figures(latencies: list[float]) -> dict[str, float]:
    return {"median_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * percentile(latencies, 0.99), "max_ms": 1000 * max(latencies)}


def start_preannotation(app, tryit, bundle: Path) -> dict[str, float]:
    """Load the bundle in the Try-it panel and start pre-annotating; return its live state."""
    from PySide6.QtTest import QTest

    tryit.load_bundle(bundle)
    deadline = time.perf_counter() + 120
    while tryit.predictor is None:
        if time.perf_counter() > deadline:
            raise SystemExit(f"the bundle did not load: {tryit.status.text()}")
        QTest.qWait(20)
    state = {"done": 0, "total": 0, "finished": 0.0, "started": time.perf_counter()}

    def progressed(done: int, total: int) -> None:
        state["done"], state["total"] = done, total

    def finished(count: int) -> None:
        state["done"], state["finished"] = count, time.perf_counter()

    tryit.preannotateProgress.connect(progressed)
    tryit.preannotated.connect(finished)
    tryit.preannotate()
    app.processEvents()
    return state


def measure(path: Path, presses: int, interval_ms: int = 0,
            bundle: Path | None = None) -> dict[str, float]:
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
    heartbeat = Heartbeat()
    heartbeat.start()
    quiet, saves = press_labels(app, labeling, presses, interval_ms)
    result = {"open_s": open_s, **figures(quiet), "stall_ms": heartbeat.stop(), **saves}
    if bundle is not None:
        state = start_preannotation(app, window.views["try"], bundle)
        labeling.editor.setFocus()
        heartbeat.start()
        busy_started = time.perf_counter()
        busy, saves = press_labels(app, labeling, presses, interval_ms)
        busy_s = time.perf_counter() - busy_started
        stall = heartbeat.stop()
        app.processEvents()
        result["during"] = {**figures(busy), "stall_ms": stall, **saves,
                            "preannotated_meanwhile": state["done"], "unlabeled": state["total"],
                            "finished_before_the_presses_ended": bool(state["finished"]),
                            "presses_s": busy_s,
                            "examples_per_s": state["done"] / (time.perf_counter()
                                                               - state["started"])}
    result["saved"] = window.project.count(status="accepted")
    window.close()
    window.deleteLater()
    QApplication.processEvents()
    del window, labeling
    return result


def make_bundle(folder: Path) -> Path:
    """Export the bundled base model with a fresh two-label head as an int8 bundle."""
    from common import default_base_model, quiet_transformers, resolve_base_model
    from preannotate_speed import export_bundles

    quiet_transformers()  # an existing bundle in the folder is used again
    return export_bundles(folder / "export", resolve_base_model(default_base_model()),
                          fp32=False)["int8"]


def show(label: str, presses: int, f: dict[str, float]) -> None:
    print(f"{label}, {presses} presses: median {f['median_ms']:.1f} ms, "
          f"p99 {f['p99_ms']:.1f} ms, max {f['max_ms']:.1f} ms; "
          f"longest event-loop stall {f['stall_ms']:.0f} ms; "
          f"{f['failed_saves']} decisions not saved ({f['refused']} refused by the store, "
          f"{f['unsaved_at_end']} still queued {SAVES_DRAIN_S:.0f} s after the last press); "
          f"queued at the last press: {f['pending_after_presses']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--presses", type=int, default=500)
    parser.add_argument("--interval-ms", type=int, default=0,
                        help="pause between presses (default: none, as fast as possible)")
    parser.add_argument("--during-preannotate", action="store_true",
                        help="press again while the Try-it panel pre-annotates the project")
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
    bundle = make_bundle(folder) if args.during_preannotate else None
    result = measure(path, args.presses, args.interval_ms, bundle)
    print(f"open project + first unlabeled example shown: {result['open_s'] * 1000:.0f} ms")
    show("label key -> next example shown (decision queued for saving)", args.presses, result)
    during = result.get("during")
    if during:
        show("the same while pre-annotating on the worker thread", args.presses, during)
        print(f"pre-annotation meanwhile: {during['preannotated_meanwhile']:,} of "
              f"{during['unlabeled']:,} unlabeled examples, "
              f"{during['examples_per_s']:.0f} examples/s"
              + (" (it finished before the presses ended: use more --examples)"
                 if during["finished_before_the_presses_ended"] else ""))
    print(f"{result['saved']} saved")
    info = {key: value for key, value in result.items() if key != "during"}
    print("RESULT " + json.dumps({"benchmark": "desktop_latency", "examples": args.examples,
                                  "presses": args.presses, "interval_ms": args.interval_ms,
                                  **info, "during_preannotate": during}, default=str))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # skip interpreter teardown: PySide6 may abort while finalizing widgets created outside an
    # event loop, which would hide the figures above behind a fatal-error message
    os._exit(code)
