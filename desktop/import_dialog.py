"""The import dialog: pick a file, check the preview and the column mapping, then import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
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
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from annotune.core.display_names import for_people
from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportOptions, serves
from annotune.core.formats.importing import describe, import_file, preview_file
from annotune.core.plugins import registry
from annotune.desktop import style
from annotune.desktop.editors.base import field_title

AUTOMATIC = "(automatic)"
NOT_USED = "(not used)"
PREVIEW_ROWS = 20
TARGET_TITLES = {"label": "Label", "split": "Split (train, validation, test)"}


def plural(count: int, word: str) -> str:
    """Return ``word`` for one, ``words`` for any other count."""
    return word if count == 1 else f"{word}s"


class ImportDialog(QDialog):
    """Show what an import would do (rows, mapping, problems with line numbers) before it writes.

    Nothing touches the project until Import is pressed; the import itself is one transaction
    and its report (added, duplicates, skipped rows) is shown in the dialog.
    """

    def __init__(self, project: Any, task: Any, parent: QWidget | None = None,
                 path: Path | None = None):
        super().__init__(parent)
        self.project = project
        self.task = task
        self.preview: Any = None
        self.previewed: tuple[str, Any, Any] | None = None  # what the shown preview is of
        self.report: Any = None
        self.setWindowTitle("Import examples")
        self.resize(900, 640)
        layout = QVBoxLayout(self)

        layout.setContentsMargins(style.MARGIN, style.MARGIN, style.MARGIN, style.MARGIN)
        layout.setSpacing(style.SPACING)
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
        self.mapping_box.setVisible(bool(preview.columns) and preview.format in (
            "csv", "tsv", "jsonl"))

    def _fill_table(self, preview: Any) -> None:
        self.table.clear()
        self.table.setColumnCount(len(preview.columns))
        self.table.setRowCount(len(preview.rows))
        self.table.setHorizontalHeaderLabels([str(c) for c in preview.columns])
        for row, values in enumerate(preview.rows):
            for column, name in enumerate(preview.columns):
                value = values.get(name, "")
                self.table.setItem(row, column, QTableWidgetItem("" if value is None
                                                                 else str(value)[:300]))
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
        """Import the file (one transaction) and show the report."""
        path = Path(self.path.text().strip())
        try:
            self.report = import_file(self.project, path, format=self.format.currentData(),
                                      options=self.options())
        except AnnotuneError as error:
            self.summary.setText(f"⚠ Nothing was imported: {for_people(str(error))}")
            return
        report = self.report
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
        if self.report is not None:
            self.accept()
        else:
            self.reject()
