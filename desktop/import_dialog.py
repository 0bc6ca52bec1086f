"""The import dialog: pick a file, check the preview and the column mapping, then import."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from annotune.core.display_names import for_people
from annotune.core.formats.base import ImportOptions, serves
from annotune.core.formats.importing import describe, import_file, preview_file
from annotune.core.plugins import registry
from annotune.desktop import style
from annotune.desktop.editors.base import field_title
from annotune.desktop.worker import run_in_background

AUTOMATIC = "(automatic)"
NOT_USED = "(not used)"
PREVIEW_ROWS = 20
TARGET_TITLES = {"label": "Label", "split": "Split (train, validation, test)"}


PROGRESS_EVERY = 500  # records read between two progress reports (a few ms of work)


def plural(count: int, word: str) -> str:
    """Return ``word`` for one, ``words`` for any other count."""
    return word if count == 1 else f"{word}s"


class ImportCancelled(Exception):
    """Cancel was pressed: the records stop, and the store undoes the whole import."""


class _Progress(QObject):
    rows = Signal(int)  # records read so far, from the import's worker thread


class _WatchedProject:
    """The project as ``import_file`` sees it, with its records counted and cancellable.

    The store reads the records as it writes them and undoes the whole import when reading
    them raises: raising ImportCancelled from the records is a cancel that leaves nothing.
    """

    def __init__(self, project: Any, progress: Callable[[int], None],
                 cancelled: threading.Event):
        self._project = project
        self._progress = progress
        self._cancelled = cancelled

    def __getattr__(self, name: str) -> Any:
        return getattr(self._project, name)

    def add_examples(self, records: Iterable[Any], **options: Any) -> Any:
        return self._project.add_examples(self._watch(records), **options)

    def _watch(self, records: Iterable[Any]) -> Iterator[Any]:
        count = 0
        for record in records:
            if self._cancelled.is_set():
                raise ImportCancelled
            count += 1
            if count % PROGRESS_EVERY == 0:
                self._progress(count)
            yield record
        if self._cancelled.is_set():
            raise ImportCancelled
        self._progress(count)


class ImportDialog(QDialog):
    """Show what an import would do (rows, mapping, problems with line numbers) before it writes.

    Nothing touches the project until Import is pressed; the import itself is all or nothing
    and its report (added, duplicates, skipped rows) is shown in the dialog. It runs on a
    worker thread with a connection of its own, so the window stays responsive and shows its
    progress; Cancel stops it and the store removes what it had written.
    """

    def __init__(self, project: Any, task: Any, parent: QWidget | None = None,
                 path: Path | None = None):
        super().__init__(parent)
        self.project = project
        self.task = task
        self.preview: Any = None
        self.previewed: tuple[str, Any, Any] | None = None  # what the shown preview is of
        self.report: Any = None
        self.importing: threading.Event | None = None  # set: cancel requested
        self.setWindowTitle("Import examples")
        self.resize(900, 640)
        layout = style.padded(QVBoxLayout(self))
        top = QFormLayout()
        file_row = QHBoxLayout()
        self.path = QLineEdit()
        self.path.setObjectName("import_path")
        self.path.setPlaceholderText("CSV, TSV, JSONL, TXT, CoNLL or SQuAD file")
        self.path.setToolTip("Type a path and press Enter to preview it; nothing is imported "
                             "before you press Import")
        # Enter (and leaving the field) previews; only the Import button writes
        self.path.editingFinished.connect(self._path_entered)
        self.path.textEdited.connect(lambda _text: self._update_buttons())
        browse = QPushButton("Choose &file…")
        browse.setAutoDefault(False)
        browse.clicked.connect(self._browse)
        file_row.addWidget(self.path, 1)
        file_row.addWidget(browse)
        top.addRow("File", file_row)
        self.format = QComboBox()
        self.format.addItem("Guess from the file name", None)
        for name, importer in sorted(registry().importers.items()):
            if serves(importer, task):
                self.format.addItem(f"{importer.title} ({', '.join(importer.extensions)})", name)
        self.format.currentIndexChanged.connect(self.refresh)
        top.addRow("Format", self.format)
        # Tables follow the delimiter their header and rows agree on; a file whose content
        # misleads that guess can be read with the delimiter the user knows it has
        self.delimiter = QComboBox()
        for title, value in (("Follow the file's content", None), ("Comma (,)", "comma"),
                             ("Semicolon (;)", "semicolon"), ("Tab", "tab"), ("Bar (|)", "bar")):
            self.delimiter.addItem(title, value)
        self.delimiter.setToolTip("The character between the columns of a CSV or TSV file")
        self.delimiter.currentIndexChanged.connect(self.refresh)
        top.addRow("Delimiter", self.delimiter)
        layout.addLayout(top)

        self.mapping_box = QGroupBox("Columns")
        mapping_form = QFormLayout(self.mapping_box)
        self.mapping: dict[str, QComboBox] = {}
        targets = list(task.fields) + (["label"] if task.needs_labels else []) + ["split"]
        for target in targets:
            combo = QComboBox()
            title = TARGET_TITLES.get(target) or field_title(task, target)
            combo.setToolTip(f"Which column of the file feeds '{title}' ({target})")
            combo.activated.connect(lambda _i: self.refresh())
            self.mapping[target] = combo
            mapping_form.addRow(title, combo)
        layout.addWidget(self.mapping_box)

        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget()
        self.table.setObjectName("preview_table")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        splitter.addWidget(self.table)
        problems = QWidget()
        problems_layout = QVBoxLayout(problems)
        problems_layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("Choose a file (or type its path and press Enter) to see its "
                              "first rows. Nothing is imported before you press Import.")
        self.summary.setObjectName("import_summary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        problems_layout.addWidget(self.summary)
        self.problems = QListWidget()
        self.problems.setObjectName("problems")
        self.problems.setWordWrap(True)  # a problem names file, line and fix: all of it shows
        problems_layout.addWidget(self.problems)
        splitter.addWidget(problems)
        layout.addWidget(splitter, 1)
        self.progress = QProgressBar()
        self.progress.setObjectName("import_progress")
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self._progress_signal = _Progress(self)
        self._progress_signal.rows.connect(self._show_progress)

        buttons = QHBoxLayout()
        self.skip_bad = QCheckBox("&Skip bad rows (they are listed in the report)")
        self.skip_bad.toggled.connect(self._update_buttons)
        buttons.addWidget(self.skip_bad)
        buttons.addStretch(1)
        # No default button: Enter in the path field must preview, never import
        self.import_button = style.primary(QPushButton("&Import"))
        self.import_button.setAutoDefault(False)
        self.import_button.clicked.connect(self._import_clicked)
        self.close_button = QPushButton("Cancel")
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self._close)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        if path is not None:
            self.path.setText(str(path))
        self.refresh()

    # -- preview ---------------------------------------------------------------------------
    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import examples", str(Path.home()),
            "Data files (*.csv *.tsv *.jsonl *.ndjson *.txt *.conll *.json);;All files (*)")
        if path:
            self.path.setText(path)
            self.refresh()

    def options(self) -> ImportOptions:
        """Build ImportOptions from the column combos (automatic ones are left to the importer)."""
        mapping = {}
        for target, combo in self.mapping.items():
            column = combo.currentData()
            if column:
                mapping[target] = column
        if self.delimiter.currentData():
            mapping["delimiter"] = self.delimiter.currentData()
        return ImportOptions(mapping=mapping, skip_bad_rows=self.skip_bad.isChecked())

    def _path_entered(self) -> None:
        if self._shown_state() != self.previewed:
            self.refresh()

    def _shown_state(self) -> tuple[str, Any, Any]:
        """What a preview depends on: the path, the format and the column mapping."""
        return (self.path.text().strip(), self.format.currentData(),
                tuple(sorted(self.options().mapping.items())))

    def refresh(self) -> None:
        """Read the file again (nothing is written) and show rows, mapping and problems."""
        text = self.path.text().strip()
        self.problems.clear()
        self.previewed = None
        if not text:
            self.preview = None
            self._update_buttons()
            return
        path = Path(text)
        if not path.is_file():
            self.preview = None
            self.summary.setText(f"⚠ No such file: {path}")
            self._update_buttons()
            return
        self.preview = preview_file(self.project, path, format=self.format.currentData(),
                                    options=self.options(), limit=PREVIEW_ROWS)
        preview = self.preview
        self._fill_mapping(preview)
        self._fill_table(preview)
        for problem in preview.problems:
            self.problems.addItem(for_people(describe(path, problem)))
        parts = [f"{preview.total:,} {plural(preview.total, 'row')} read as "
                 f"{preview.format or '?'}"]
        bad = len(preview.problems)
        if bad:
            parts.append(f"{bad:,} bad {plural(bad, 'row')} (listed below, with their line)")
        text = "; ".join(parts)
        if preview.error:
            text = f"⚠ {for_people(str(preview.error))}\n{text}"
        elif bad:
            text += (". Fix the file and press Enter in the file field to read it again, or "
                     "tick 'Skip bad rows' to import the other rows.")
        elif preview.total:
            text += ". Check the rows and columns, then press Import."
        # what the content decided (format, delimiter) and what the file holds that feeds nothing
        text = "\n".join([text, *(for_people(str(note)) for note in preview.notes)])
        self.summary.setText(text)
        self.previewed = self._shown_state()
        self._update_buttons()

    def _fill_mapping(self, preview: Any) -> None:
        for target, combo in self.mapping.items():
            chosen = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            used = preview.mapping.get(target)
            combo.addItem(f"{AUTOMATIC}: {used}" if used else
                          (AUTOMATIC if target in self.task.fields else NOT_USED), None)
            for column in preview.columns:
                combo.addItem(column, column)
            if chosen:
                index = combo.findData(chosen)
                if index >= 0:
                    combo.setCurrentIndex(index)
            combo.blockSignals(False)
        importer = registry().importers.get(preview.format or "")
        self.mapping_box.setVisible(bool(preview.columns)
                                    and bool(getattr(importer, "maps_columns", False)))

    def _fill_table(self, preview: Any) -> None:
        """Show the first rows, numbered by their line in the file, bad ones in red.

        Problems name file lines; numbering the rows 1, 2, 3 instead would point a person
        at the row below a bad one (the header is line 1).
        """
        self.table.clear()
        self.table.setColumnCount(len(preview.columns))
        self.table.setRowCount(len(preview.rows))
        self.table.setHorizontalHeaderLabels([str(c) for c in preview.columns])
        lines = getattr(preview, "lines", [])
        lines = lines if len(lines) == len(preview.rows) else []
        if lines:
            self.table.setVerticalHeaderLabels([str(line) for line in lines])
            self.table.verticalHeader().setToolTip("The line of the file each row starts on")
        problems = {problem.line: problem for problem in preview.problems}
        path = Path(self.path.text().strip())
        for row, values in enumerate(preview.rows):
            problem = problems.get(lines[row]) if lines else None
            for column, name in enumerate(preview.columns):
                value = values.get(name, "")
                item = QTableWidgetItem("" if value is None else str(value)[:300])
                if problem is not None:
                    item.setForeground(style.state_colour("failed"))
                    item.setToolTip(for_people(describe(path, problem)))
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        for column in range(self.table.columnCount()):
            self.table.setColumnWidth(column, min(self.table.columnWidth(column), 420))

    def _update_buttons(self) -> None:
        preview = self.preview
        current = self.previewed is not None and self.previewed[0] == self.path.text().strip()
        ready = (preview is not None and current and not preview.error and preview.total > 0
                 and (not preview.problems or self.skip_bad.isChecked())
                 and self.report is None)
        self.import_button.setEnabled(ready)
        if preview is not None and not current:
            self.import_button.setToolTip("Press Enter in the file field to preview it first")
        elif preview is not None and preview.problems and not self.skip_bad.isChecked():
            self.import_button.setToolTip("Fix the bad rows, or tick 'Skip bad rows'")
        else:
            self.import_button.setToolTip("Add the previewed examples to the project "
                                          "(one transaction)")

    # -- import ----------------------------------------------------------------------------
    def _import_clicked(self) -> None:
        """Import what the preview shows; a file or mapping changed since is previewed first."""
        if self._shown_state() != self.previewed:
            self.refresh()
            return
        self.run_import()

    def run_import(self) -> None:
        """Import the file on a worker thread (all or nothing) and show the report when done."""
        if self.importing is not None:
            return
        path = Path(self.path.text().strip())
        format_name, options = self.format.currentData(), self.options()
        cancel = threading.Event()
        self.importing = cancel
        total = self.preview.total if self.preview is not None else 0
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(0)
        self.progress.setFormat(f"%v of {total:,} rows" if total else "%v rows")
        self.progress.setVisible(True)
        self.summary.setText("Importing… The examples appear in the project all at once when "
                             "the import is complete; Cancel leaves the project as it was.")
        self._set_inputs_enabled(False)
        self.close_button.setText("Cancel import")
        project_path = Path(self.project.path)
        emit = self._progress_signal.rows.emit

        def work() -> Any:
            # a connection of the worker's own: the window's stays free for the GUI thread
            from annotune.core.store import Project

            with Project.open(project_path) as project:
                return import_file(_WatchedProject(project, emit, cancel), path,
                                   format=format_name, options=options)

        run_in_background(work, self._imported, self._import_failed)

    def wait_for_import(self, timeout_s: float = 60.0) -> bool:
        """Serve the event loop until the running import is done; False after the timeout."""
        from PySide6.QtCore import QCoreApplication

        deadline = time.monotonic() + timeout_s
        while self.importing is not None:
            if time.monotonic() > deadline:
                return False
            QCoreApplication.processEvents()
            time.sleep(0.005)
        return True

    def cancel_import(self) -> None:
        """Ask the running import to stop; the store removes what it wrote (no-op when idle)."""
        if self.importing is not None and not self.importing.is_set():
            self.importing.set()
            self.close_button.setEnabled(False)
            self.summary.setText("Cancelling… removing what the import had written.")

    def _show_progress(self, rows: int) -> None:
        if self.importing is not None:
            self.progress.setValue(min(rows, self.progress.maximum()) if self.progress.maximum()
                                   else rows)

    def _finished_importing(self) -> None:
        self.importing = None
        self.progress.setVisible(False)
        self.close_button.setEnabled(True)
        self._set_inputs_enabled(True)

    def _set_inputs_enabled(self, enabled: bool) -> None:
        for widget in (self.path, self.format, self.delimiter, self.mapping_box, self.skip_bad,
                       self.import_button):
            widget.setEnabled(enabled)

    def _import_failed(self, error: BaseException) -> None:
        if not isValid(self):
            return
        self._finished_importing()
        self.close_button.setText("Cancel")
        if isinstance(error, ImportCancelled):
            self.summary.setText("Import cancelled: nothing was added to the project.")
        else:
            self.summary.setText(f"⚠ Nothing was imported: {for_people(str(error))}")
        self._update_buttons()

    def _imported(self, report: Any) -> None:
        if not isValid(self):  # the examples are in the project; the dialog is gone
            return
        self._finished_importing()
        self.report = report
        lines = [f"Imported {report.added:,} {plural(report.added, 'example')} "
                 f"({report.annotated:,} already labeled)."]
        if report.duplicates:
            shown = ", ".join(map(str, report.duplicate_lines[:10]))
            more = ", …" if len(report.duplicate_lines) > 10 else ""
            lines.append(f"{report.duplicates:,} {plural(report.duplicates, 'duplicate')} not "
                         f"added ({plural(len(report.duplicate_lines), 'line')} {shown}{more}).")
        lines += (for_people(str(note)) for note in report.notes)
        lines += [f"Note: {line}." for line in report.note_lines]
        if report.problems:
            bad = len(report.problems)
            lines.append(f"{bad:,} bad {plural(bad, 'row')} skipped:")
        self.summary.setText("\n".join(lines))
        self.problems.clear()
        for line in report.skipped:
            self.problems.addItem(for_people(line))
        self.import_button.setEnabled(False)
        self.close_button.setText("Done")
        self.setResult(QDialog.DialogCode.Accepted)

    def _close(self) -> None:
        if self.importing is not None:
            self.cancel_import()
        elif self.report is not None:
            self.accept()
        else:
            self.reject()

    def reject(self) -> None:
        """Escape or the window's close button: cancel a running import instead of leaving."""
        if self.importing is not None:
            self.cancel_import()
            return
        if self.report is not None:  # imported: the caller refreshes its counts
            self.accept()
            return
        super().reject()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        if self.importing is not None:
            self.cancel_import()
            event.ignore()
            return
        super().closeEvent(event)
