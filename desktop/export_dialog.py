"""The export dialog: a finished run → an ONNX bundle (fp32 or int8), with its checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from annotune.core.display_names import metric_title
from annotune.core.export import ExportReport, run_folder
from annotune.core.export.report import NO_VALIDATION
from annotune.core.export.validation import ValidationReport
from annotune.core.training_env import export_in_child
from annotune.desktop import style
from annotune.desktop.training_env import with_interpreter
from annotune.desktop.worker import run_in_background


class _Stages(QObject):
    stage = Signal(str)  # what the export child is doing, from its worker thread


def report_from_dict(data: dict[str, Any]) -> ExportReport:
    """Rebuild the ExportReport the export child printed as JSON."""
    values = {name: data[name] for name in ExportReport.__dataclass_fields__ if name in data}
    values["bundle_dir"] = Path(data["bundle_dir"])
    values["model_path"] = Path(data["model_path"])
    scored = data.get("validation")
    if scored is not None:
        values["validation"] = ValidationReport(
            metric=scored["metric"], examples=scored["examples"],
            available=scored["available"], fp32=scored["fp32"],
            recorded=scored.get("recorded"), int8=scored.get("int8"),
            int8_agreement=scored.get("int8_agreement"),
            scale=100.0 if scored.get("scale") == "0-100" else 1.0)
    return ExportReport(**values)


# how this dialog says "keep fp32" where the command line names its --int8 flag
REMEDY = "choose fp32 (exact) and export again"


def headline(report: Any) -> list[tuple[str, str]]:
    """Return the report's three plain lines (size, speed, accuracy cost) as (title, text)."""
    rows = []
    for line in report.headline(remedy=REMEDY):
        title, _, text = line.partition(":")
        rows.append((title.strip(), text.strip()))
    return rows


def validation_details(validation: ValidationReport | None) -> list[str]:
    """Describe the validation scores with the metric's title (the report's own uses its key)."""
    if validation is None:
        return [NO_VALIDATION]
    title = metric_title(validation.metric)
    line = f"{title} fp32 {validation.show(validation.fp32)}"
    if validation.int8 is not None:
        change = 0.0 - (validation.int8_cost_points or 0.0)
        line += f", int8 {validation.show(validation.int8)} ({change:+.2f} points)"
    line += f" on {validation.examples:,} examples"
    if validation.examples != validation.available:
        line += f" (an even spread of the run's {validation.available:,})"
    lines = [line]
    if validation.recorded is not None:
        recorded = f"{title} {validation.show(validation.recorded)}"
        if validation.matches_recorded is None:
            lines.append(f"the checkpoint recorded {recorded} on all {validation.available:,} "
                         "validation examples (not comparable with a subset)")
        elif validation.matches_recorded:
            lines.append(f"fp32 bundle equals the checkpoint's recorded {recorded}")
        else:
            difference = validation.points(validation.fp32 - validation.recorded)
            lines.append(f"fp32 bundle differs from the checkpoint's recorded {recorded} by "
                         f"{difference:+.2f} points")
    return lines


def report_lines(report: Any) -> list[str]:
    """Describe an ExportReport's details (below the headline) in lines people can read."""
    lines = [f"Bundle: {report.bundle_dir}"]  # its size is the headline's first line
    fused = getattr(report, "fused", None)
    if fused:
        layers = fused.get("Attention", 0)
        lines.append(f"Graph: fused for onnxruntime ({layers} attention layer"
                     f"{'s' if layers != 1 else ''} as single operators)")
    lines.append(f"Parity with PyTorch: max difference {report.parity_max_diff:.2e} over "
                 f"{report.parity_examples} samples")
    if report.int8_agreement is not None:
        scheme = getattr(report, "int8_scheme", None)
        lines.append(f"int8 predictions equal to fp32: {100 * report.int8_agreement:.1f}% of "
                     f"{report.parity_examples} samples"
                     + (f" ({scheme} scales)" if scheme else ""))
    validation = validation_details(report.validation)
    lines.append(f"Validation: {validation[0]}")
    lines += [f"    {line}" for line in validation[1:]]
    notes = list(report.notes)
    if report.validation is not None and report.validation.over_allowance:
        # the headline's accuracy line says what int8 cost and what keeps fp32's score
        notes = [note for note in notes if note != report.validation.cost_note()]
    lines += [f"⚠ {note}" for note in notes]
    return lines


class ExportDialog(QDialog):
    """Choose fp32 or int8 and a folder; export on a worker thread; show size, parity, speed."""

    exported = Signal(Path)

    def __init__(self, run: dict[str, Any], runs_dir: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.run = run
        self.report: Any = None
        self.error: BaseException | None = None
        # a run records its model/ checkpoint as artifact; core maps it to the run folder
        self.run_dir = run_folder(Path(run.get("artifact_dir") or runs_dir / str(run["id"])))
        self.setWindowTitle(f"Export run {run['id']}")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        precision_row = QHBoxLayout()
        self.fp32 = QRadioButton("fp32 (exact)")
        self.int8 = QRadioButton("int8 (about 4× smaller, slightly less exact)")
        self.fp32.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.fp32)
        group.addButton(self.int8)
        self.fp32.toggled.connect(self._default_destination)
        precision_row.addWidget(self.fp32)
        precision_row.addWidget(self.int8)
        form.addRow("Precision", precision_row)
        destination_row = QHBoxLayout()
        self.destination = QLineEdit()
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        destination_row.addWidget(self.destination, 1)
        destination_row.addWidget(browse)
        form.addRow("Destination", destination_row)
        layout.addLayout(form)
        # what the export measured: size, speed and accuracy cost first, in plain words
        self.headline_box = QWidget()
        self.headline_box.setObjectName("export_headline")
        self.headline_grid = QGridLayout(self.headline_box)
        self.headline_grid.setContentsMargins(0, style.SPACING, 0, style.SPACING)
        self.headline_grid.setColumnStretch(1, 1)
        self.headline_box.setVisible(False)
        layout.addWidget(self.headline_box)
        self.result_label = QLabel("The export checks the ONNX model against PyTorch, scores "
                                   "it on the run's validation data and measures its speed.")
        self.result_label.setObjectName("export_result")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.result_label, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.accept)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self._default_destination()

    def _default_destination(self) -> None:
        kind = "int8" if self.int8.isChecked() else "fp32"
        self.destination.setText(str(self.run_dir / f"bundle-{kind}"))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Bundle folder", str(self.run_dir))
        if folder:
            self.destination.setText(folder)

    def start_export(self) -> None:
        """Export in the training environment's Python (the export traces with torch)."""
        destination = Path(self.destination.text().strip())
        quantize = self.int8.isChecked()
        self.export_button.setEnabled(False)
        self.result_label.setText("Looking for the training environment…")
        with_interpreter(self, lambda interpreter: self._export(interpreter.python, destination,
                                                                quantize),
                         purpose="export", cancelled=self._not_enabled)

    def _export(self, python: str, destination: Path, quantize: bool) -> None:
        self.result_label.setText("Exporting and checking… (this takes a few seconds)")
        stages = _Stages(self)
        stages.stage.connect(lambda text: self.result_label.setText(f"Exporting: {text}…"))
        run_in_background(
            lambda: report_from_dict(export_in_child(python, self.run_dir, destination,
                                                     quantize, stages.stage.emit)),
            self._done, self._failed)

    def _not_enabled(self) -> None:
        self.export_button.setEnabled(True)
        self.result_label.setText("Export needs PyTorch: press Export to set it up.")

    def _done(self, report: Any) -> None:
        if not isValid(self):  # closed while the export ran: nobody to tell
            return
        self.report = report
        self.export_button.setEnabled(True)
        self._show_headline(report)
        self.result_label.setText("\n".join(["Details", *report_lines(report)]))
        style.muted(self.result_label)
        self._fit_contents()
        self.exported.emit(Path(report.bundle_dir))

    def _fit_contents(self) -> None:
        """Grow the dialog so every wrapped line of the report shows (never shrink it).

        A window's minimum size ignores how tall wrapped text gets at its width, so the
        lines would be cut off at the height the dialog had before the report.
        """
        layout = self.layout()
        layout.activate()
        needed = (layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth()
                  else layout.totalSizeHint().height())
        if needed > self.height():
            self.resize(self.width(), needed)

    def _show_headline(self, report: Any) -> None:
        while self.headline_grid.count():
            item = self.headline_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        costly = report.validation is not None and report.validation.over_allowance
        for row, (title, text) in enumerate(headline(report)):
            name = QLabel(title)
            name.setFont(style.font_scaled(name.font(), 1.0, bold=True))
            value = QLabel(text)
            value.setObjectName(f"headline_{title.lower()}")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if costly and title == "Accuracy":
                style.error_text(value)
            self.headline_grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
            self.headline_grid.addWidget(value, row, 1)
        self.headline_box.setVisible(True)

    def headline_text(self) -> str:
        """Return the headline as shown, one "Title: text" line per row."""
        rows = []
        for row in range(self.headline_grid.rowCount()):
            items = [self.headline_grid.itemAtPosition(row, column) for column in (0, 1)]
            if all(item is not None and item.widget() is not None for item in items):
                rows.append(f"{items[0].widget().text()}: {items[1].widget().text()}")
        return "\n".join(rows)

    def _failed(self, error: BaseException) -> None:
        if not isValid(self):
            return
        self.error = error
        self.export_button.setEnabled(True)
        self.headline_box.setVisible(False)
        style.error_text(self.result_label)
        self.result_label.setText(f"⚠ Export failed: {error}")
