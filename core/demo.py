"""The demo: the whole path (import, train, export, predict) on a sample annotune writes itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from annotune.core.demo_data import LABELS, NEW_TEXTS, demo_rows, unlabeled_texts
from annotune.core.errors import EXIT_NO_WINDOW, AnnotuneError

PROJECT_NAME = "demo.annotune"
DEMO_EPOCHS = 5


def _prepare_folder(folder: Path) -> None:
    """Start from an empty demo folder, never deleting a folder that is not an earlier demo."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / PROJECT_NAME).exists():
            raise AnnotuneError("the folder exists and is not an annotune demo", where=str(folder),
                                hint="pass another folder with --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def display_available() -> bool:
    """True when a desktop window could be shown here."""
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_demo(folder: Path, gui: str, train: Callable) -> int:
    """Build the demo project in folder, train, export fp32 and int8 bundles, predict.

    The project ends ready for a person: its labeled sample trained the model, a few dozen
    unlabeled reviews wait in the Label tab with the fp32 bundle's suggestions (so
    "most uncertain first" orders them by a real model), and both bundles are recorded
    beside the run, so the Try it tab lists them.
    """
    from annotune.core.export import export_run
    from annotune.core.formats.importing import import_file
    from annotune.core.inference import Predictor
    from annotune.core.preannotate import preannotate
    from annotune.core.store import Project
    from annotune.core.tasks import TaskSettings
    from annotune.core.training.config import TrainConfig

    started = time.perf_counter()
    _prepare_folder(folder)
    sample = folder / "reviews.jsonl"
    with sample.open("w", encoding="utf-8") as out:
        for row in demo_rows():
            out.write(json.dumps(row) + "\n")
    unlabeled = folder / "more-reviews.txt"
    unlabeled.write_text("".join(f"{text}\n" for text in unlabeled_texts()), encoding="utf-8")

    project = Project.create(folder / PROJECT_NAME, task="text-classification",
                             settings=TaskSettings(labels=LABELS), base_model=None)
    print(f"1/5 project {project.path}")
    print(f"    {import_file(project, sample)}")
    print(f"    {import_file(project, unlabeled)}")
    project_path = project.path
    project.close()

    print(f"2/5 training the bundled all-MiniLM-L6-v2 for {DEMO_EPOCHS} epochs")
    final = train(project_path, TrainConfig(epochs=DEMO_EPOCHS))
    if final.get("event") != "finished":
        raise AnnotuneError(f"demo training did not finish: {final.get('error', final)}")
    run_dir = Path(final["artifact_dir"])

    print("3/5 exporting ONNX bundles")
    bundles = {}
    for name, quantize in (("bundle-fp32", False), ("bundle-int8", True)):
        report = export_run(run_dir, folder / name, quantize=quantize)
        bundles[name] = folder / name
        print(textwrap.indent(str(report), "    "))

    print("4/5 predictions of the int8 bundle on new sentences")
    predictor = Predictor(bundles["bundle-int8"])
    for text, prediction in zip(NEW_TEXTS, predictor.predict(list(NEW_TEXTS)), strict=True):
        print(f"    {prediction['label']:<9} {prediction['score']:.3f}  {text}")

    print("5/5 suggestions of the fp32 bundle for the unlabeled reviews")
    with Project.open(project_path) as project:
        count = preannotate(project, bundles["bundle-fp32"], only_unlabeled=True)
        first = project.next_example(status="unlabeled", order="uncertainty")
        least_sure = project.prediction(first.id) if first is not None else None
    print(f"    stored suggestions for {count} unlabeled reviews"
          + (f"; the least sure ({least_sure.score:.2f}): {first.fields['text']}"
             if least_sure is not None and first is not None else ""))
    print(f"done in {time.perf_counter() - started:.0f} s; project, runs and bundles in {folder}")
    print(f"next: {runnable_command()} gui {project_path} — label the {count} reviews left "
          "(most uncertain first), try the bundles, train again")

    return open_window(project_path, gui)


def runnable_command() -> str:
    """Return how to run annotune again from this shell: its name on PATH, else its path.

    `make demo` runs .venv/bin/annotune without activating the venv; a next step that says
    plain `annotune` would answer "command not found".
    """
    script = Path(sys.argv[0])
    if script.name != "annotune":
        return "annotune"
    found = shutil.which("annotune")
    if found is not None and Path(found).resolve() == script.resolve():
        return "annotune"
    return str(script)


def open_window(project_path: Path, gui: str) -> int:
    """Open the desktop app on the finished demo project when asked or a display is there.

    In the automatic mode a system that cannot show a window (the app names the missing
    libraries and exits with EXIT_NO_WINDOW) does not fail the demo: the project, runs and
    bundles are ready, and the line above says what to install to look at them.
    """
    if not (gui == "yes" or (gui == "auto" and display_available())):
        return 0
    # A child process: core never imports Qt, and the window outlives nothing of ours.
    print("opening the desktop app on the demo project")
    code = subprocess.call([sys.executable, "-m", "annotune.desktop.app", str(project_path)])
    if code == EXIT_NO_WINDOW and gui == "auto":
        print(f"the demo is ready without its window: once that is installed, "
              f"{runnable_command()} gui {project_path}")
        return 0
    return code
