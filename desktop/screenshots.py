"""Regenerate docs/screenshots/: build demo projects in a temp folder and grab every main view.

Run from the repository root (offscreen, so it works without a display)::

    python -m annotune.desktop.screenshots            # writes docs/screenshots/*.png
    python -m annotune.desktop.screenshots --no-train # skip the training/export/try-it views

Pictures are taken at twice the pixel density (QT_SCALE_FACTOR=2), as a high-DPI screen shows
the app, in the light scheme; the ``-dark`` ones in the dark scheme. Training uses the bundled
all-MiniLM-L6-v2 for a few epochs on the demo reviews (a few minutes on a laptop CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# set before Qt starts: it fixes the device pixel ratio of every window
os.environ.setdefault("QT_SCALE_FACTOR", "2")
os.environ.setdefault("ANNOTUNE_COLOR_SCHEME", "light")  # the same pictures on every machine

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from annotune.core.formats.base import ImportRecord  # noqa: E402
from annotune.core.store import Project  # noqa: E402
from annotune.core.tasks import TaskSettings  # noqa: E402

SIZE = (1120, 720)

PAIRS = [
    ("A woman is slicing tomatoes in a small kitchen.", "Someone is preparing food.",
     "entailment"),
    ("Two kids are playing football on a muddy field.", "The children are asleep indoors.",
     "contradiction"),
    ("A man in a blue coat waits at the bus stop.", "The man is going to work.", "neutral"),
    ("The orchestra rehearses on an empty stage.", "Musicians are practising.", "entailment"),
]
NER_TEXTS = [
    "Maria Keller joined Northwind Traders in Hamburg after ten years at Contoso.",
    "The festival in Lyon was opened by Jean Dupont on Friday.",
    "Fabrikam moved its offices from Oslo to Bergen in 2019.",
]
QA_ROWS = [
    {"context": "The lighthouse at Cape Arden was built in 1871 from local granite. It was "
                "automated in 1962, and its lamp can be seen from 40 kilometres away on a "
                "clear night. Today the keeper's cottage is a small museum.",
     "question": "When was the lighthouse automated?"},
    {"context": "Glass frogs live in the rainforests of Central and South America. Their "
                "belly skin is translucent, so their heart and liver can be seen.",
     "question": "Where do glass frogs live?"},
]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Process events until condition() holds; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        QApplication.processEvents()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def settle(widget: QWidget, seconds: float = 0.15) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)
    widget.repaint()


def grab(widget: QWidget, path: Path) -> None:
    settle(widget)
    picture = widget.grab()
    if not picture.save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path} ({picture.width()}x{picture.height()} pixels, "
          f"{picture.devicePixelRatio():g}x)")


def grab_dark(widget: QWidget, path: Path) -> None:
    """Grab a widget in the dark scheme, then return to the light one."""
    from annotune.desktop.style import apply_style

    app = QApplication.instance()
    apply_style(app, Qt.ColorScheme.Dark)
    try:
        grab(widget, path)
    finally:
        apply_style(app, Qt.ColorScheme.Light)


def _project(path: Path, task: str, labels: tuple[str, ...], rows: list[dict],
             **settings: object) -> Project:
    project = Project.create(path, task=task, settings=TaskSettings(labels=labels, **settings))
    records = []
    for line, row in enumerate(rows, 1):
        annotation = row.pop("_annotation", None)
        records.append(ImportRecord(fields=row, annotation=annotation, line=line))
    project.add_examples(records, source=f"{path.stem}.jsonl")
    return project


def build_projects(folder: Path) -> dict[str, Path]:
    """Write the four demo projects; return their paths by task kind."""
    from annotune.core.demo_data import LABELS, NEW_TEXTS, demo_rows, unlabeled_texts

    rows = demo_rows()
    labeled = [{"text": r["text"], "_annotation": {"label": r["label"]}} for r in rows[:-40]]
    unlabeled = [{"text": r["text"]} for r in rows[-40:]] + [{"text": t} for t in NEW_TEXTS]
    unlabeled += [{"text": t} for t in unlabeled_texts()]  # mixed opinions: real uncertainty
    paths = {"reviews": folder / "reviews.annotune", "nli": folder / "nli.annotune",
             "ner": folder / "people-and-places.annotune", "qa": folder / "lighthouse-qa.annotune"}
    _project(paths["reviews"], "text-classification", LABELS, labeled + unlabeled).close()
    _project(paths["nli"], "pair-classification", ("entailment", "neutral", "contradiction"),
             [{"text": a, "text_pair": b} for a, b, _ in PAIRS]).close()
    _project(paths["ner"], "token-classification", ("PER", "ORG", "LOC"),
             [{"text": t} for t in NER_TEXTS]).close()
    _project(paths["qa"], "question-answering", (), [dict(r) for r in QA_ROWS],
             allow_unanswerable=True, max_length=384).close()
    return paths


def shoot(out: Path, train: bool) -> None:
    from annotune.desktop.app import application
    from annotune.desktop.import_dialog import ImportDialog
    from annotune.desktop.main_window import MainWindow
    from annotune.desktop.recent import remember_project

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="annotune-shots-"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "ini"))
    os.environ["ANNOTUNE_DATA_DIR"] = str(work / "data")
    app = application()
    paths = build_projects(work)
    for path in reversed(list(paths.values())):
        remember_project(path)

    window = MainWindow()
    window.resize(*SIZE)
    window.show()
    window.start_screen.refresh()
    grab(window, out / "start.png")

    from annotune.core.plugins import registry
    from annotune.desktop.start_screen import NewProjectDialog

    dialog = NewProjectDialog(registry(), window, folder=Path("/home/ada/projects"))
    dialog.labels.setText("negative, positive")
    dialog.show()
    grab(dialog, out / "new-project.png")
    dialog.close()

    # editors -------------------------------------------------------------------------------
    window.open_project(paths["nli"])
    grab(window, out / "editor-pairs.png")

    window.open_project(paths["ner"])
    spans = window.views["label"].editor
    spans.text_view.select(0, 12)
    spans.apply_label("PER")
    spans.text_view.select(20, 37)
    spans.apply_label("ORG")
    spans.text_view.select(41, 48)
    grab(window, out / "editor-ner.png")
    spans.accept()  # saved, so switching projects asks nothing

    window.open_project(paths["qa"])
    answers = window.views["label"].editor
    context = answers.context.toPlainText()
    start = context.index("1962")
    answers.context.select(start, start + 4)
    grab(window, out / "editor-qa.png")

    window.open_project(paths["reviews"])
    csv = work / "more-reviews.csv"
    csv.write_text("review,sentiment\nArrived quickly and works well,positive\n"
                   "The lid broke on day two,negative\nDoes the job,maybe\n"
                   "Battery lasts all week,positive\n", encoding="utf-8")
    dialog = ImportDialog(window.project, window.task, window, path=csv)
    dialog.mapping["label"].setCurrentIndex(dialog.mapping["label"].findData("sentiment"))
    dialog.refresh()
    dialog.resize(900, 600)
    dialog.show()
    grab(dialog, out / "import.png")
    dialog.close()

    window.tabs.setCurrentWidget(window.views["examples"])
    grab(window, out / "browser.png")

    train_settings(window, out)
    if train:
        train_and_export(window, out)
        check_labels(window, out)
        # opened again with the bundle's suggestions stored: least sure reviews come first
        window.open_project(paths["reviews"])
    labeling = window.views["label"]
    window.tabs.setCurrentWidget(labeling)
    labeling.refresh_current()
    grab(window, out / "editor-classification.png")
    grab_dark(window, out / "editor-classification-dark.png")
    window.show_shortcuts()
    grab(window.shortcuts_sheet, out / "shortcuts.png")
    window.shortcuts_sheet.close()
    window.close()
    app.processEvents()


def train_settings(window: object, out: Path) -> None:
    """Grab the train panel before a run: what the labels allow, Advanced closed and open."""
    window.tabs.setCurrentWidget(window.views["train"])
    panel = window.views["train"]
    grab(window, out / "train.png")
    panel.advanced_toggle.setChecked(True)
    grab(window, out / "train-advanced.png")
    grab_dark(window, out / "train-advanced-dark.png")
    panel.advanced_toggle.setChecked(False)


def train_and_export(window: object, out: Path) -> None:
    """Train the bundled model for a few epochs, then export, try and pre-annotate."""
    window.tabs.setCurrentWidget(window.views["train"])
    panel = window.views["train"]
    panel.epochs.setValue(4)
    panel.batch_size.setValue(16)
    panel.train()
    wait_until(lambda: len(panel.metric_chart.series.get("f1", [])) >= 2
               or panel.watcher is None, 900, "two training epochs")
    grab(window, out / "training.png")
    wait_until(lambda: panel.watcher is None, 900, "the end of training")
    if (panel.last_event or {}).get("event") != "finished":
        raise RuntimeError(f"training did not finish: {panel.last_event}")

    runs = window.views["runs"]
    window.tabs.setCurrentWidget(runs)
    runs.refresh()
    grab(window, out / "runs.png")
    runs.export_selected()
    dialog = runs.dialog
    dialog.int8.setChecked(True)
    dialog.start_export()
    wait_until(lambda: dialog.report is not None or dialog.error is not None, 600, "export")
    grab(dialog, out / "export.png")
    grab_dark(dialog, out / "export-dark.png")
    dialog.close()

    tryit = window.views["try"]
    window.tabs.setCurrentWidget(tryit)
    tryit.refresh_bundles()
    wait_until(lambda: tryit.predictor is not None, 120, "the bundle to load")
    tryit.inputs["text"].setPlainText("The zipper broke after two days and the seller never "
                                      "replied.")
    tryit.predict()
    grab(window, out / "tryit.png")
    grab_dark(window, out / "tryit-dark.png")
    done = []
    tryit.preannotated.connect(done.append)
    tryit.preannotate()
    wait_until(lambda: bool(done), 300, "pre-annotation")


def check_labels(window: object, out: Path) -> None:
    """Run Model ▸ Check labels on the reviews (5 fine-tuned folds) and grab its suspects."""
    from annotune.desktop.label_check import runner_for

    runner = runner_for(window)
    checks, ended = [], []
    runner.finished.connect(checks.append)
    runner.running.connect(lambda on: None if on else ended.append(True))
    runner.start(window.project, 5)  # what Model ▸ Check labels… starts after asking for folds
    wait_until(lambda: bool(ended), 1800, "the label check")
    if not checks:
        raise RuntimeError("the label check did not finish (see the status bar's message)")
    browser = window.views["examples"]
    wait_until(lambda: window.tabs.currentWidget() is browser, 30, "the suspects to open")
    settle(window, 0.5)
    grab(window, out / "browser-suspects.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the desktop screenshots.")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--no-train", action="store_true",
                        help="skip training, export and try-it (no model needed)")
    args = parser.parse_args(argv)
    shoot(args.out, train=not args.no_train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
