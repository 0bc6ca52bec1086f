"""What an export produced and measured, as the CLI prints it and the desktop shows it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from annotune.core.validation import ValidationReport


@dataclass
class ExportReport:
    """What an export produced, for the CLI and the desktop's export dialog."""

    bundle_dir: Path
    model_path: Path
    files: dict[str, int]  # file name -> bytes
    task: str
    parity_max_diff: float  # fp32 onnxruntime vs PyTorch, real positions only
    parity_per_output: dict[str, float]
    parity_examples: int
    parity_features: int
    quantized: bool = False
    fp32_bytes: int = 0
    int8_bytes: int | None = None
    int8_agreement: float | None = None  # share of samples whose decoded prediction is unchanged
    int8_argmax_agreement: float | None = None  # share of rows/tokens whose argmax is unchanged
    int8_scheme: str | None = None  # "per-tensor" or "per-channel" scales
    int8_sqnr_db: float | None = None  # int8 outputs' signal-to-noise against fp32, validation
    latency_ms: float = 0.0  # per example at batch 1 through the Predictor (tokenizing included)
    seconds: float = 0.0
    validation: ValidationReport | None = None  # None: the run kept no validation data
    fused: dict[str, int] | None = None  # onnxruntime's fused operators in the graph, by count
    notes: list[str] = field(default_factory=list)

    @property
    def model_bytes(self) -> int:
        """Size of the model: its graph file plus its external weights."""
        return sum(size for name, size in self.files.items()
                   if name.startswith(self.model_path.name))

    def __str__(self) -> str:
        """Describe the export in a few lines (what the CLI prints)."""
        kind = "int8" if self.quantized else "fp32"
        lines = [f"bundle      {self.bundle_dir}",
                 f"model       {self.model_path.name}, {_mib(self.model_bytes)} ({kind})"]
        if self.quantized:
            lines.append(f"fp32 size   {_mib(self.fp32_bytes)}")
        if self.fused:
            lines.append("graph       fused for onnxruntime: " + ", ".join(
                f"{count} {name}" for name, count in self.fused.items()))
        lines.append(f"parity      max |onnx - torch| {self.parity_max_diff:.2e} over "
                     f"{self.parity_examples} samples ({self.parity_features} windows)")
        if self.int8_agreement is not None:
            scheme = f"{self.int8_scheme} scales; " if self.int8_scheme else ""
            lines.append(f"int8        {scheme}{self.int8_agreement:.1%} of sample predictions "
                         f"equal fp32 ({self.int8_argmax_agreement:.1%} of argmaxes)")
            if self.int8_sqnr_db is not None:
                lines.append(f"            outputs {self.int8_sqnr_db:.1f} dB above the int8 noise "
                             "on validation data (signal-to-noise against fp32)")
        lines.extend(f"{'validation' if n == 0 else '':<12}{line}"
                     for n, line in enumerate(validation_lines(self.validation)))
        lines.append(f"latency     {self.latency_ms:.2f} ms per example (batch 1, CPU)")
        lines.extend(f"note        {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bundle_dir"] = str(self.bundle_dir)
        data["model_path"] = str(self.model_path)
        data["model_bytes"] = self.model_bytes
        data["validation"] = self.validation.to_dict() if self.validation else None
        return data


NO_VALIDATION = ("no validation data was available (the run has no validation.jsonl; "
                 "runs trained by older versions lack it)")


def validation_lines(validation: ValidationReport | None) -> list[str]:
    """Describe the validation scores in one or two lines (the CLI and the desktop show them)."""
    if validation is None:
        return [NO_VALIDATION]
    recorded = validation.recorded_summary()
    return [validation.summary()] + ([recorded] if recorded else [])


def _mib(size: int | None) -> str:
    return f"{(size or 0) / 2**20:.1f} MiB"
