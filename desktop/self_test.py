"""Walk through the installed app as a person would, and report each step as a JSON line.

``annotune-desktop --self-test startup,label,predict,train,export PROJECT --bundle B`` opens
the real main window, labels the first example with its key, asks the Try-it tab for a
prediction from a bundle, trains one run through the training environment, exports it
through the export dialog, and checks that the app process never imported torch. It answers
whether an installation (the frozen app above all) works on this machine; the packaging
tests and the start-up benchmark run it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit

STEPS = ("startup", "label", "predict", "train", "export")


def emit(step: str, ok: bool, **details: Any) -> None:
    print(json.dumps({"step": step, "ok": ok, **details}, ensure_ascii=False, default=str),
          flush=True)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Run the event loop until ``condition()`` holds; False when ``timeout`` s passed."""
    deadline = time.monotonic() + timeout
    # An event loop's own processEvents: PySide6 6.12's static QApplication.processEvents
    # drops a reference to None on every call, and thousands of calls abort the process.
    loop = QEventLoop()
    while not condition():
        if time.monotonic() > deadline:
            return False
        loop.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)
    return True


def _label(window: Any) -> dict[str, Any]:
    labeling = window.views["label"]
    if labeling.current is None:
        return {"ok": False, "error": "the project has no unlabeled example to label"}
    first = labeling.current.id
    window.activateWindow()  # the editor's keys are window shortcuts: the window needs focus
    window.raise_()
    wait_until(lambda: QApplication.activeWindow() is window, 5)
    labeling.editor.setFocus()
    QTest.keyClick(labeling.editor, Qt.Key.Key_1)
    if not labeling.wait_for_saves(30):  # decisions are written on the save thread
        return {"ok": False, "example": first, "error": "the decision was not saved in 30 s"}
    stored = window.project.annotation(first)
    return {"ok": stored is not None, "example": first,
            "annotation": stored.payload if stored else None}


def _predict(window: Any, bundle: Path, text: str) -> dict[str, Any]:
    tryit = window.views["try"]
    window.tabs.setCurrentWidget(tryit)
    tryit.load_bundle(bundle)
    if not wait_until(lambda: tryit.predictor is not None, 60):
        return {"ok": False, "error": tryit.status.text()}
    tryit.last_prediction = None
    field = next(iter(tryit.inputs.values()))
    if isinstance(field, QLineEdit):
        field.setText(text)
    else:
        field.setPlainText(text)
    tryit.predict()
    wait_until(lambda: tryit.last_prediction is not None, 30)
    return {"ok": tryit.last_prediction is not None, "prediction": tryit.last_prediction}


def _train(window: Any, base_model: str | None, timeout: float) -> dict[str, Any]:
    panel = window.views["train"]
    window.tabs.setCurrentWidget(panel)
    if base_model:
        panel.set_base_model(base_model)
    panel.epochs.setValue(1)
    ended: list[dict[str, Any]] = []
    panel.runEnded.connect(ended.append)
    panel.train()
    if not wait_until(lambda: bool(ended) or getattr(panel, "enable_training_dialog", None)
                      is not None, timeout):
        return {"ok": False, "error": f"no result after {timeout:.0f} s: {panel.status.text()}"}
    if not ended:
        tried = panel.enable_training_dialog.findChild(object, "tried")
        return {"ok": False, "error": "no Python with torch was found"
                + (f": {tried.text()}" if tried is not None else "")}
    event = ended[0]
    return {"ok": event.get("event") == "finished", "event": event.get("event"),
            "error": event.get("error"), "run_id": event.get("run_id")}


def _export(window: Any, timeout: float) -> dict[str, Any]:
    """Export the newest finished run through the export dialog (a child with torch)."""
    from annotune.desktop.export_dialog import ExportDialog

    runs = [run for run in window.project.runs() if run["status"] == "finished"]
    if not runs:
        return {"ok": False, "error": "no finished run to export"}
    dialog = ExportDialog(runs[-1], window.project.runs_dir, window)
    dialog.start_export()
    wait_until(lambda: dialog.report is not None or dialog.error is not None, timeout)
    report = dialog.report
    return {"ok": report is not None, "error": str(dialog.error) if dialog.error else None,
            "bundle": str(report.bundle_dir) if report else None,
            "parity_max_diff": report.parity_max_diff if report else None}


def run(window: Any, steps: list[str], project: Path | None, bundle: Path | None,
        base_model: str | None, text: str = "works like a charm 🍕",
        timeout: float = 600.0) -> int:
    """Run the steps against an open main window; return 0 when every one passed."""
    failed = 0
    emit("startup", True)  # the window is shown: the start-up benchmark times this line
    if project is not None and steps != ["startup"]:
        if not window.open_project(project):
            emit("open", False, project=str(project))
            return 1
        emit("open", True, project=str(project))
    for step in steps:
        if step == "startup":
            continue
        try:
            if step == "label":
                result = _label(window)
            elif step == "predict" and bundle is not None:
                result = _predict(window, bundle, text)
            elif step == "train":
                result = _train(window, base_model, timeout)
            elif step == "export":
                result = _export(window, timeout)
            else:
                result = {"ok": False, "error": f"unknown step or missing --bundle: {step}"}
        except Exception as error:  # reported as the step's failure
            result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        ok = bool(result.pop("ok"))
        failed += not ok
        emit(step, ok, **result)
    torch_free = "torch" not in sys.modules
    emit("torch-free", torch_free, modules=sorted(
        m for m in ("torch", "transformers") if m in sys.modules))
    failed += not torch_free
    return 1 if failed else 0
