"""The main window: menus, the start screen, and the project's views in tabs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QTabWidget,
    QWidget,
)

from annotune.core.errors import AnnotuneError
from annotune.desktop.crash import show_error
from annotune.desktop.recent import remember_project
from annotune.desktop.start_screen import NewProjectDialog, StartScreen

log = logging.getLogger("annotune.desktop")

TAB_LABEL, TAB_EXAMPLES, TAB_TRAIN, TAB_RUNS, TAB_TRY = range(5)
SAVES_WAIT_S = 5.0  # how long closing waits for queued decisions before asking


def counts_text(counts: dict[str, int]) -> str:
    """Say in the status bar how far the labeling is: "Labeled 592 of 1,000 examples"."""
    total = counts.get("total", 0)
    if not total:
        return "No examples yet: import some (File ▸ Import…, Ctrl+I)"
    text = f"Labeled {counts.get('accepted', 0):,} of {total:,} example{'' if total == 1 else 's'}"
    if counts.get("skipped"):
        text += f" · {counts['skipped']:,} skipped"
    return text


class MainWindow(QMainWindow):
    """One window: the start screen until a project is open, then Label/Examples/Train/Runs/Try."""

    def __init__(self, registry: Any = None, editors: Any = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        from annotune.core.plugins import registry as core_registry
        from annotune.desktop.plugins import editor_registry
        from annotune.desktop.style import ensure_style

        ensure_style()  # when the app was not started by app.application() (tests, embedding)

        self.registry = registry or core_registry()
        self.editors = editors or editor_registry()
        self.project: Any = None
        self.task: Any = None
        self.views: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._catching_up = False
        self._file_marker: tuple[dict[str, int], int] | None = None  # see ``_catch_up``
        self.setWindowTitle("annotune")
        self.resize(1100, 760)

        self.stack = QStackedWidget()
        self.start_screen = StartScreen()
        self.start_screen.newRequested.connect(self.new_project)
        self.start_screen.openRequested.connect(self.open_project_dialog)
        self.start_screen.openPath.connect(self.open_project)
        self.stack.addWidget(self.start_screen)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.stack.addWidget(self.tabs)
        self.setCentralWidget(self.stack)

        self.counts_label = QLabel()
        self.counts_label.setObjectName("counts")
        self.statusBar().addPermanentWidget(self.counts_label)
        self._build_menus()
        self._project_actions_enabled(False)
        self._tab_keys()

    # -- menus -----------------------------------------------------------------------------
    def _action(self, menu: Any, text: str, slot: Any, shortcut: Any = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        # the mnemonic's "&" underlines a letter in the menu; in a tip it would show as is
        tip = tip or text.replace("&", "").rstrip("…")
        action.setToolTip(f"{tip} ({keys})" if keys else tip)
        action.setStatusTip(action.toolTip())
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.setToolTipsVisible(True)
        self.new_action = self._action(file_menu, "&New project…", self.new_project,
                                       QKeySequence.StandardKey.New)
        self.open_action = self._action(file_menu, "&Open project…", self.open_project_dialog,
                                        QKeySequence.StandardKey.Open)
        file_menu.addSeparator()
        self.import_action = self._action(file_menu, "&Import…", self.import_data, "Ctrl+I",
                                          tip="Import examples from a file")
        self.export_data_action = self._action(file_menu, "&Export data…", self.export_data,
                                               tip="Write the annotated examples to a file")
        self.save_copy_action = self._action(file_menu, "Save a &copy…", self.save_copy,
                                             tip="Copy the project with every saved label, "
                                                 "safely while it is in use")
        file_menu.addSeparator()
        self.close_action = self._action(file_menu, "C&lose project",
                                         lambda: self.close_project())
        self.quit_action = self._action(file_menu, "&Quit", self.close, "Ctrl+Q")

        edit_menu = bar.addMenu("&Edit")
        edit_menu.setToolTipsVisible(True)
        self.undo_action = self._action(edit_menu, "&Undo", self.undo, "Ctrl+Z",
                                        tip="Undo the last labeling decision")
        self.redo_action = self._action(edit_menu, "&Redo", self.redo, "Ctrl+Shift+Z",
                                        tip="Redo the last undone decision")
        self.find_action = self._action(edit_menu, "&Find examples…", self.find_examples,
                                        QKeySequence.StandardKey.Find,
                                        tip="Search the examples' text in the Examples tab")
        edit_menu.addSeparator()
        self.add_label_action = self._action(edit_menu, "Add &label…", self.add_label,
                                             tip="Add a label after the project's own; every "
                                                 "saved label is kept")

        model_menu = bar.addMenu("&Model")
        model_menu.setToolTipsVisible(True)
        self.train_action = self._action(model_menu, "&Train…", self.show_train,
                                         tip="Fine-tune a model on the labeled examples")
        self.export_bundle_action = self._action(model_menu, "&Export bundle…",
                                                 self.export_bundle,
                                                 tip="Export a trained run as an ONNX bundle")
        self.preannotate_action = self._action(model_menu, "&Pre-annotate", self.preannotate,
                                               tip="Store the model's suggestions for "
                                                   "unlabeled examples")
        self.check_labels_action = self._action(model_menu, "&Check labels…", self.check_labels,
                                                tip="Find annotations that are probably wrong")
        self._build_help_menu(bar)

    def _tab_keys(self) -> None:
        """Make Ctrl+Tab and Ctrl+Shift+Tab change tabs wherever the focus is.

        QTabWidget only sees these keys when the focused widget passes them on; a table (the
        Examples tab, Runs) keeps them for itself, so the window's own shortcuts take them first.
        """
        for key, step in (("Ctrl+Tab", 1), ("Ctrl+Shift+Tab", -1)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(lambda step=step: self.step_tab(step))

    def step_tab(self, step: int) -> None:
        """Show the next (step 1) or previous (step -1) tab, wrapping around at the ends."""
        if self.stack.currentWidget() is self.tabs and self.tabs.count():
            self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % self.tabs.count())

    def _build_help_menu(self, bar: Any) -> None:
        help_menu = bar.addMenu("&Help")
        help_menu.setToolTipsVisible(True)
        self.shortcuts_action = self._action(help_menu, "&Keyboard shortcuts",
                                             self.show_shortcuts,
                                             QKeySequence.StandardKey.HelpContents,
                                             tip="Every key of the app, read from its menus "
                                                 "and views")

    def show_shortcuts(self) -> None:
        """Open the Help ▸ Keyboard shortcuts sheet (built from the window's actual keys)."""
        from annotune.desktop.shortcuts import ShortcutsSheet

        self.shortcuts_sheet = ShortcutsSheet(self)
        self.shortcuts_sheet.open()

    def _project_actions_enabled(self, enabled: bool) -> None:
        for action in (self.import_action, self.export_data_action, self.save_copy_action,
                       self.close_action,
                       self.undo_action, self.redo_action, self.find_action,
                       self.add_label_action,
                       self.train_action,
                       self.export_bundle_action, self.preannotate_action,
                       self.check_labels_action):
            action.setEnabled(enabled)

    # -- project life ----------------------------------------------------------------------
    def new_project(self) -> None:
        dialog = NewProjectDialog(self.registry, self)
        if dialog.exec() != NewProjectDialog.DialogCode.Accepted:
            return
        path, task_name, settings, base_model = dialog.values()
        from annotune.core.store import Project

        try:
            project = Project.create(path, task=task_name, settings=settings,
                                     base_model=base_model)
        except AnnotuneError as error:
            show_error(self, error)
            return
        self.set_project(project)

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", str(Path.home()),
                                              "annotune projects (*.annotune);;All files (*)")
        if path:
            self.open_project(Path(path))

    def open_project(self, path: Path) -> bool:
        """Open a project file; show what went wrong when it cannot be opened."""
        from annotune.core.store import Project

        try:
            project = Project.open(Path(path))
        except AnnotuneError as error:
            show_error(self, error)
            return False
        self.set_project(project)
        return True

    def set_project(self, project: Any) -> None:
        """Show a project in the tabs (closing the one open before)."""
        from annotune.desktop.browser import BrowserView
        from annotune.desktop.labeling import LabelingView
        from annotune.desktop.runs_view import RunsView
        from annotune.desktop.train_panel import TrainPanel
        from annotune.desktop.tryit import TryItPanel

        if not self.close_project():
            project.close()
            return
        self.statusBar().clearMessage()
        self.project = project
        self.task = self.registry.task(project.task_name)
        editor = self.editors.factory(self.task.annotation_kind)(self.task, project.settings)
        labeling = LabelingView(project, self.task, editor)
        labeling.countsChanged.connect(self.update_counts)
        labeling.statusChanged.connect(self.status_changed)
        labeling.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        labeling.saveFailed.connect(self._save_failed)
        browser = BrowserView(project, self.task)
        browser.openExample.connect(self.open_example)
        browser.annotationSaved.connect(labeling.adopt_change)  # Ctrl+Z may take it back
        train = TrainPanel(project, self.task)
        train.runFinished.connect(lambda _run: self.views["runs"].refresh())
        runs = RunsView(project, self.task)
        tryit = TryItPanel(project, self.task)
        runs.exported.connect(tryit.load_bundle)
        tryit.preannotated.connect(lambda _n: labeling.refresh_current())
        self.views = {"label": labeling, "examples": browser, "train": train, "runs": runs,
                      "try": tryit}
        self.tabs.addTab(labeling, "Label")
        self.tabs.addTab(browser, "Examples")
        self.tabs.addTab(train, "Train")
        self.tabs.addTab(runs, "Runs")
        self.tabs.addTab(tryit, "Try it")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.stack.setCurrentWidget(self.tabs)
        self._project_actions_enabled(True)
        self.setWindowTitle(f"{Path(project.path).name} — {self.task.title} — annotune")
        remember_project(Path(project.path))
        self.update_counts()
        labeling.start()
        log.info("opened %s", project.path)

    def close_project(self, ask: bool = True) -> bool:
        """Close the open project (offering to save pending edits); False when cancelled."""
        if self.project is None:
            return True
        if ask and not self.save_pending():
            return False
        if not self.finish_saves():
            return False
        train = self.views.get("train")
        if train is not None:
            train.stop()
        try:
            self.tabs.currentChanged.disconnect(self._tab_changed)
        except (RuntimeError, TypeError):
            pass
        while self.tabs.count():
            widget = self.tabs.widget(0)
            self.tabs.removeTab(0)
            widget.deleteLater()
        self.views = {}
        closer = getattr(self.project, "close", None)
        if closer:
            closer()
        self.project = None
        self.task = None
        self.counts_label.setText("")
        self.counts = {}
        self._file_marker = None
        self.setWindowTitle("annotune")
        self._project_actions_enabled(False)
        self.start_screen.refresh()
        self.stack.setCurrentWidget(self.start_screen)
        return True

    def _tab_changed(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is self.views.get("examples"):
            widget.refresh()
        elif widget is self.views.get("runs"):
            widget.refresh()
        elif widget is self.views.get("train"):
            widget.panel_shown()
        elif widget is self.views.get("label"):
            widget.editor.focus_editor()
        elif widget is self.views.get("try"):
            # typing right away must reach the text, not search the bundle list
            widget.focus_input()

    def update_counts(self) -> None:
        """Count examples again and show 'labeled N of M' in the status bar."""
        if self.project is None:
            return
        self.counts = {"total": self.project.count(),
                       "accepted": self.project.count(status="accepted"),
                       "skipped": self.project.count(status="skipped")}
        self._show_counts()

    def status_changed(self, before: str, after: str) -> None:
        """Adjust the counts for one example whose status changed (no recount)."""
        if not self.counts:
            self.update_counts()
            return
        if before in self.counts:
            self.counts[before] -= 1
        if after in self.counts:
            self.counts[after] += 1
        self._show_counts()

    def _show_counts(self) -> None:
        self.counts_label.setText(counts_text(self.counts))

    def open_example(self, example_id: int) -> None:
        self.tabs.setCurrentWidget(self.views["label"])
        self.views["label"].open_example(example_id)

    # -- actions ---------------------------------------------------------------------------
    def find_examples(self) -> None:
        """Show the Examples tab with the cursor in its search field."""
        browser = self.views.get("examples")
        if browser is not None:
            self.tabs.setCurrentWidget(browser)
            browser.focus_search()

    def undo(self) -> None:
        self.tabs.setCurrentWidget(self.views["label"])
        self.views["label"].undo()

    def redo(self) -> None:
        self.tabs.setCurrentWidget(self.views["label"])
        self.views["label"].redo()

    def import_data(self) -> None:
        from annotune.desktop.import_dialog import ImportDialog

        dialog = ImportDialog(self.project, self.task, self)
        if dialog.exec() == ImportDialog.DialogCode.Accepted:
            self.update_counts()
            self.views["examples"].refresh()
            if self.views["label"].current is None:
                self.views["label"].start()

    def export_data(self) -> None:
        from annotune.core.formats.importing import export_data

        path, _ = QFileDialog.getSaveFileName(
            self, "Export annotated data", str(Path(self.project.path).with_suffix(".jsonl")),
            "JSON lines (*.jsonl);;CSV (*.csv);;TSV (*.tsv);;All files (*)")
        if not path:
            return
        try:
            count = export_data(self.project, Path(path))
        except AnnotuneError as error:
            show_error(self, error)
            return
        self.statusBar().showMessage(f"Wrote {count} annotated examples to {path}", 8000)

    def add_label(self, name: str | None = None) -> bool:
        """Ask for a new label, store it, and reopen the views so the editors show it."""
        if self.project is None:
            return False
        if not self.task.needs_labels:
            self.statusBar().showMessage(f"A {self.task.title} project has no labels", 5000)
            return False
        if self.views["train"].running():
            self.statusBar().showMessage("Add labels once the training has finished", 8000)
            return False
        if name is None:
            labels = ", ".join(self.project.settings.labels)
            name, ok = QInputDialog.getText(self, "Add label",
                                            f"New label (the project has: {labels}):")
            if not ok:
                return False
        if not self.save_pending() or not self.finish_saves():
            return False
        try:
            self.project.add_labels([name])
        except AnnotuneError as error:
            show_error(self, error)
            return False
        if self._reopen():
            self.statusBar().showMessage(f"Added the label '{name.strip()}'", 5000)
        return True

    def _reopen(self) -> bool:
        """Open the project again on the same tab, so the editors are built with its labels."""
        path, tab = Path(self.project.path), self.tabs.currentIndex()
        if self.close_project(ask=False) and self.open_project(path):
            self.tabs.setCurrentIndex(tab)
            return True
        return False

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        # back from a terminal, a script or another window: show what they changed
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self.catch_up()
        super().changeEvent(event)

    def catch_up(self) -> None:
        """Show what other programs changed in the open project: labels, counts, the example.

        Labels another program added get their keys (the views are built again, once the
        decisions queued here are written); entities marked and not yet accepted are never
        dropped for it: then the window only says so.
        """
        # Qt may send the event while the window is still being built
        if getattr(self, "project", None) is None or getattr(self, "_catching_up", True):
            return
        self._catching_up = True
        try:
            self._catch_up()
        except AnnotuneError as error:  # a convenience: the next activation tries again
            log.info("catching up with the project failed: %s", error)
        finally:
            self._catching_up = False

    def _views_busy(self) -> str | None:
        """Name what the views are in the middle of (building them again would end it)."""
        if self.views["train"].running():
            return "the training"
        if getattr(self.views["runs"], "curve_watcher", None) is not None:
            return "the learning curve"
        if getattr(self.views["try"], "preannotating", False):
            return "the pre-annotation"
        if self.views["label"].editor.pending_annotation() is not None:
            return "accepting the entities marked (Enter)"
        return None

    def _catch_up(self) -> None:
        labeling = self.views["label"]
        known = self.project.settings.labels
        added = self.project.stored_settings().labels[len(known):]
        if added:
            names = ", ".join(f"'{name}'" for name in added)
            busy = self._views_busy()
            if busy is not None:
                self.statusBar().showMessage(
                    f"Another program added the label(s) {names}: they get their keys when "
                    f"you come back to this window after {busy}", 10000)
            elif self.finish_saves() and self._reopen():
                self.statusBar().showMessage(
                    f"Another program added the label(s) {names}; the label keys now "
                    "include them", 10000)
            return
        self.update_counts()
        labeling.catch_up()
        # the newest history entry moves with every label given, changed or skipped anywhere,
        # the counts with every import: either means the table's rows may be stale
        newest = self.project.history(limit=1)
        marker = (dict(self.counts), newest[0]["id"] if newest else 0)
        if marker != self._file_marker:
            self._file_marker = marker
            if self.tabs.currentWidget() is self.views["examples"]:
                self.views["examples"].refresh()

    def show_train(self) -> None:
        self.tabs.setCurrentWidget(self.views["train"])

    def export_bundle(self) -> None:
        self.tabs.setCurrentWidget(self.views["runs"])
        self.views["runs"].export_selected()

    def preannotate(self) -> None:
        self.tabs.setCurrentWidget(self.views["try"])
        self.views["try"].preannotate()

    def check_labels(self) -> None:
        """Start a label check (or stop the running one); its suspects open in Examples."""
        from annotune.desktop.label_check import runner_for

        runner_for(self).toggle(self.project)

    def save_pending(self) -> bool:
        """Offer to save edits not yet accepted; return False when the person cancels."""
        labeling = self.views.get("label")
        if labeling is None or labeling.current is None:
            return True
        pending = labeling.editor.pending_annotation()
        if pending is None:
            return True
        answer = QMessageBox.question(
            self, "Unsaved entities",
            f"Example #{labeling.current.id} has changes you did not accept with Enter. "
            "Save them?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            labeling.keep_pending()
        return True

    def _save_failed(self, kind: str, example_id: Any, text: str) -> None:
        """Show a decision the store refused (it is not saved, the example is unlabeled)."""
        what = f"example #{example_id}" if example_id is not None else "the project"
        show_error(self, AnnotuneError(f"this {kind} of {what} was not saved: {text}",
                                       hint="label the example again"))

    def finish_saves(self) -> bool:
        """Wait for the labeling decisions still being written; False if the person gives up.

        Nothing is dropped: while another program holds the project the decisions stay
        queued, and the person chooses between waiting longer and not closing.
        """
        labeling = self.views.get("label")
        if labeling is None:
            return True
        while not labeling.close_saves(timeout_s=SAVES_WAIT_S):
            waiting = labeling.saves.outstanding()
            answer = QMessageBox.question(
                self, "Saving",
                f"{waiting} labeling decision(s) are not written yet: another program is "
                "writing to this project. Keep waiting? (Cancel keeps the project open; "
                "nothing is lost either way.)",
                QMessageBox.StandardButton.Retry | QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Retry:
                return False
        return True

    def save_copy(self) -> None:
        """Copy the open project (every saved label, consistent) to a file the person picks."""
        from annotune.core.store import Project
        from annotune.desktop.worker import run_in_background

        suggested = Path(self.project.path).with_name(f"{Path(self.project.path).stem}-copy"
                                                      ".annotune")
        path, _ = QFileDialog.getSaveFileName(self, "Save a copy of the project",
                                              str(suggested),
                                              "annotune projects (*.annotune);;All files (*)")
        if not path:
            return
        source = Path(self.project.path)

        def copy() -> Any:
            # its own connection, on a worker thread; the dialog asked before replacing a file
            with Project.open(source) as project:
                return project.backup(Path(path), force=Path(path).exists())

        self.statusBar().showMessage(f"Copying the project to {path}…")
        run_in_background(copy,
                          lambda report: self.statusBar().showMessage(f"Saved a copy: {report}",
                                                                      10000),
                          lambda error: show_error(self, error))

    def closeEvent(self, event: QCloseEvent) -> None:
        train = self.views.get("train")
        if train is not None and train.running():
            answer = QMessageBox.question(self, "Training is running",
                                          "Stop the training run and quit?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        if not self.save_pending():
            event.ignore()
            return
        QSettings().setValue("geometry", self.saveGeometry())
        if not self.close_project(ask=False):  # decisions still waiting to be written
            event.ignore()
            return
        event.accept()
