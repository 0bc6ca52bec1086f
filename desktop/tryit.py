"""The Try-it panel: type text, see the bundle's prediction at once; pre-annotate from it."""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from annotune.core.bundle_records import project_bundles
from annotune.core.display_names import for_people, metric_title
from annotune.core.errors import AnnotuneError
from annotune.desktop import style
from annotune.desktop.editors.base import field_title
from annotune.desktop.plugins import editor_registry
from annotune.desktop.train_panel import format_eta
from annotune.desktop.worker import run_in_background

EMPTY_BUNDLES = ("No bundle yet. Train a model on the <b>Train</b> tab, then export it on the "
                 "<b>Runs</b> tab (<b>Export bundle…</b>) to try it here — or choose a "
                 "bundle folder with <b>Folder…</b>.")


def find_bundles(runs_dir: Path) -> list[Path]:
    """Return the bundles of a project's runs, newest first (recorded exports included)."""
    return [found.path for found in project_bundles(runs_dir)]


def read_manifest(path: Path) -> dict[str, Any]:
    """Return a bundle's manifest ({} when it cannot be read: the Predictor will say why)."""
    try:
        manifest = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def bundle_kind(manifest: dict[str, Any]) -> str:
    """Return ``int8`` or ``fp32`` for a bundle's manifest."""
    return "int8" if manifest.get("quantization") else "fp32"


def bundle_title(path: Path, run: str = "", manifest: dict[str, Any] | None = None) -> str:
    """Return how a bundle is listed, e.g. ``bundle-int8 · int8 · run 1``."""
    manifest = read_manifest(path) if manifest is None else manifest
    parts = [Path(path).name, bundle_kind(manifest)]
    if run:
        parts.append(f"run {run}")
    return " · ".join(parts)


def int8_cost(manifest: dict[str, Any], task: Any = None) -> str:
    """Say what an int8 bundle costs on validation data ('' for fp32 or when unknown)."""
    validation = manifest.get("validation") or {}
    cost = validation.get("int8_cost_points")
    if not manifest.get("quantization") or not isinstance(cost, int | float):
        return ""
    metric = metric_title(str(validation.get("metric") or ""), task)
    if cost <= 0:
        return f"int8 scores as well as fp32 on validation ({metric})"
    limit = validation.get("cost_limit_points")
    over = isinstance(limit, int | float) and cost > limit
    return (f"{'⚠ ' if over else ''}int8 costs {cost:.2f} points of {metric} on validation"
            + (f", more than the {limit} allowed: an fp32 export keeps them" if over else ""))


class TryItPanel(QWidget):
    """Load a bundle and show its prediction for whatever is typed, as it is typed."""

    preannotated = Signal(int)  # how many examples got a stored prediction
    preannotateProgress = Signal(int, int)  # done, total; emitted from the worker thread

    def __init__(self, project: Any, task: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.task = task
        self.predictor: Any = None
        self.bundle: Path | None = None
        self.last_prediction: dict[str, Any] | None = None
        layout = style.padded(QVBoxLayout(self))

        bar = QHBoxLayout()
        bundle_label = QLabel("&Bundle")
        bar.addWidget(bundle_label)
        self.bundles = QComboBox()
        self.bundles.setObjectName("bundles")
        self.bundles.setToolTip("An exported bundle of this project (or choose a folder)")
        self.bundles.activated.connect(lambda _i: self._bundle_chosen())
        bundle_label.setBuddy(self.bundles)
        bar.addWidget(self.bundles, 1)
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        bar.addWidget(browse)
        self.preannotate_button = QPushButton("Pre-annotate unlabeled")
        self.preannotate_button.setToolTip("Store this bundle's predictions for the unlabeled "
                                           "examples: the editor shows them as suggestions and "
                                           "can order examples by uncertainty")
        self.preannotate_button.clicked.connect(self._preannotate_clicked)
        self.preannotateProgress.connect(self._preannotate_progress)
        self.preannotating = False
        self.stop_requested = False  # read by the worker thread after each page
        self.preannotate_started = 0.0
        bar.addWidget(self.preannotate_button)
        layout.addLayout(bar)
        self.status = QLabel(EMPTY_BUNDLES)
        self.status.setObjectName("tryit_status")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.status)

        self.inputs: dict[str, Any] = {}
        inputs = QVBoxLayout()
        for name in self._input_order():
            inputs.addWidget(style.muted(QLabel(field_title(task, name))))
            if name in task.short_fields:
                widget: Any = QLineEdit()
                widget.textChanged.connect(self._schedule)
            else:
                widget = QPlainTextEdit()
                widget.setTabChangesFocus(True)  # Tab moves on, as in a form
                # beside a one-line question the context gets the room
                widget.setMaximumHeight(200 if task.short_fields else 140)
                widget.textChanged.connect(self._schedule)
            widget.setObjectName(f"try_{name}")
            widget.setPlaceholderText(f"Type or paste a {field_title(task, name).lower()}; "
                                      "the prediction follows as you type")
            self.inputs[name] = widget
            inputs.addWidget(widget)
        layout.addLayout(inputs)

        layout.addWidget(style.heading(QLabel("Prediction")))
        # drawn by the annotation kind's views (bars, highlighted text; JSON for others)
        self.result = editor_registry().view(task.annotation_kind).result_view(task)
        self.result.setObjectName("try_result")
        layout.addWidget(self.result, 1)
        self.answer_label = QLabel()
        self.answer_label.setObjectName("try_answer")
        self.answer_label.setWordWrap(True)
        layout.addWidget(self.answer_label)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self.predict)
        self.refresh_bundles()

    def showEvent(self, event: QShowEvent) -> None:
        """List the bundles again each time the tab is shown (one may have been exported)."""
        super().showEvent(event)
        self.refresh_bundles()

    def focus_input(self) -> None:
        """Put the cursor in the first text box: showing the tab is a request to type."""
        first = next(iter(self.inputs.values()), None)
        if first is not None:
            first.setFocus(Qt.FocusReason.OtherFocusReason)

    def _input_order(self) -> list[str]:
        short = [name for name in self.task.fields if name in self.task.short_fields]
        return short + [name for name in self.task.fields if name not in short]

    # -- bundles ---------------------------------------------------------------------------
    def refresh_bundles(self) -> None:
        """List the project's bundles; load the newest when none is loaded yet."""
        current = self.bundles.currentData()
        chosen_elsewhere = [(self.bundles.itemText(i), self.bundles.itemData(i))
                            for i in range(self.bundles.count())]
        self.bundles.clear()
        for found in project_bundles(Path(self.project.runs_dir)):
            self.bundles.addItem(bundle_title(found.path, found.run), str(found.path))
            self.bundles.setItemData(self.bundles.count() - 1, str(found.path),
                                     Qt.ItemDataRole.ToolTipRole)
        for text, data in chosen_elsewhere:  # folders picked by hand stay in the list
            if data and self.bundles.findData(data) < 0 and Path(data).is_dir():
                self.bundles.addItem(text, data)
        if current:
            index = self.bundles.findData(current)
            if index >= 0:
                self.bundles.setCurrentIndex(index)
        self.preannotate_button.setEnabled(self.predictor is not None)
        if self.predictor is None and self.bundles.count():
            self._bundle_chosen()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Bundle folder")
        if folder:
            self.load_bundle(Path(folder))

    def _bundle_chosen(self) -> None:
        data = self.bundles.currentData()
        if data:
            self.load_bundle(Path(data))

    def load_bundle(self, path: Path) -> None:
        """Load a bundle on a worker thread, then predict what is typed."""
        from annotune.core.inference import Predictor

        path = Path(path)
        if self.bundles.findData(str(path)) < 0:
            self.bundles.addItem(bundle_title(path), str(path))
        self.bundles.setCurrentIndex(self.bundles.findData(str(path)))
        self.status.setText(f"Loading {path.name}…")
        self.loading = path

        def loaded(predictor: Any) -> None:
            if predictor.task.name != self.task.name:
                self.status.setText(f"⚠ {escape(str(path))} is a {predictor.task.title} model; "
                                    f"this project is {self.task.title}")
                return
            self.predictor, self.bundle = predictor, path
            manifest = predictor.manifest or {}
            cost = int8_cost(manifest, self.task)
            self.status.setText(f"Loaded {path.name} ({bundle_kind(manifest)}). Type below; "
                                "the prediction follows." + (f"<br>{cost}" if cost else ""))
            self.status.setToolTip(str(path))
            self.preannotate_button.setEnabled(True)
            self.predict()

        def failed(error: BaseException) -> None:
            self.status.setText(f"⚠ Cannot load the bundle: {escape(for_people(str(error)))}")

        run_in_background(lambda: Predictor(path, batch_size=8), loaded, failed)

    # -- predicting ------------------------------------------------------------------------
    def _schedule(self) -> None:
        self._timer.start()

    def item(self) -> dict[str, str]:
        values = {}
        for name, widget in self.inputs.items():
            values[name] = widget.text() if isinstance(widget, QLineEdit) \
                else widget.toPlainText()
        return values

    def predict(self) -> None:
        """Predict the typed item and show the result (few milliseconds on a CPU)."""
        item = self.item()
        if self.predictor is None or not all(v.strip() for v in item.values()):
            return
        try:
            prediction = self.predictor.predict_one(item)
        except AnnotuneError as error:
            self.answer_label.setText(f"⚠ {error}")
            return
        self.last_prediction = prediction
        self.answer_label.setText(self.result.show_prediction(item, prediction,
                                                              self.project.settings.labels))

    # -- pre-annotation --------------------------------------------------------------------
    def _preannotate_clicked(self) -> None:
        if self.preannotating:
            self.stop_preannotate()
        else:
            self.preannotate()

    def preannotate(self) -> None:
        """Store the loaded bundle's predictions for every unlabeled example, off the GUI thread.

        The button turns into Stop meanwhile; stopping keeps the pages already stored.
        """
        if self.bundle is None:
            self.status.setText("Load a bundle first (export a run on the Runs tab).")
            return
        if self.preannotating:
            return  # one run at a time
        from annotune.core.preannotate import preannotate
        from annotune.core.store import Project

        self.status.setText("Pre-annotating…")
        self.preannotating, self.stop_requested = True, False
        self.preannotate_started = time.perf_counter()
        self.preannotate_button.setText("Stop pre-annotating")
        path, bundle, predictor = self.project.path, self.bundle, self.predictor

        def progress(done: int, total: int) -> bool:
            self.preannotateProgress.emit(done, total)
            return not self.stop_requested

        def work() -> int:
            # a connection of its own: SQLite connections belong to the thread that opened them
            with Project.open(path) as project:
                return preannotate(project, bundle, only_unlabeled=True, predictor=predictor,
                                   progress=progress)

        def done(count: int) -> None:
            stopped = self.stop_requested
            self._preannotate_finished()
            if stopped:
                self.status.setText(f"Stopped: suggestions stored for {count:,} examples "
                                    "(they stay).")
            else:
                self.status.setText(f"Stored suggestions for {count:,} examples. The Label tab "
                                    "shows them; Enter accepts one.")
            self.preannotated.emit(int(count))

        def failed(error: BaseException) -> None:
            self._preannotate_finished()
            self.status.setText(f"⚠ {escape(for_people(str(error)))}")

        run_in_background(work, done, failed)

    def stop_preannotate(self) -> None:
        """Ask the running pre-annotation to stop after the page it is on."""
        if self.preannotating:
            self.stop_requested = True
            self.preannotate_button.setEnabled(False)
            self.status.setText("Stopping after this page…")

    def _preannotate_finished(self) -> None:
        self.preannotating = False
        self.preannotate_button.setText("Pre-annotate unlabeled")
        self.preannotate_button.setEnabled(True)

    def _preannotate_progress(self, done: int, total: int) -> None:
        if self.stop_requested:
            return
        seconds = time.perf_counter() - self.preannotate_started
        rate = done / seconds if seconds > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        self.status.setText(f"Pre-annotating… {done:,} of {total:,} · {rate:,.0f} examples/s · "
                            f"{format_eta(eta)} left")
