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
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from annotune.core.export import ExportReport, run_folder, validation_lines
from annotune.core.training_env import export_in_child
from annotune.core.validation import ValidationReport
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


def human_size(size: int | float | None) -> str:
    """Return e.g. ``86.7 MB``."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def report_lines(report: Any) -> list[str]:
    """Describe an ExportReport in a few lines people can read."""
    lines = [f"Bundle: {report.bundle_dir}",
             f"Model file: {human_size(report.model_bytes)}"
             + (" (int8)" if report.quantized else " (fp32)")]
    if report.quantized and report.fp32_bytes:
        lines.append(f"fp32 would be {human_size(report.fp32_bytes)}")
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
    validation = validation_lines(report.validation)
    lines.append(f"Validation: {validation[0]}")
    lines += [f"    {line}" for line in validation[1:]]
    lines.append(f"Speed: {report.latency_ms:.1f} ms per example (batch 1, CPU, "
                 "tokenizing included)")
    notes = list(report.notes)
    if report.validation is not None and report.validation.over_allowance:
        # the command line's remedy names its --int8 flag; here the choice is a radio button
        notes = [report.validation.cost_note("choose fp32 (exact) and export again")
                 if note == report.validation.cost_note() else note for note in notes]
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
        self.result_label = QLabel("The export checks the ONNX model against PyTorch, scores "
                                   "it on the run's validation data and measures its speed.")
        self.result_label.setObjectName("export_result")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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
        self.report = report
        self.export_button.setEnabled(True)
        self.result_label.setText("\n".join(report_lines(report)))
        self.exported.emit(Path(report.bundle_dir))

    def _failed(self, error: BaseException) -> None:
        self.error = error
        self.export_button.setEnabled(True)
        self.result_label.setText(f"⚠ Export failed: {error}")
