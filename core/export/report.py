"""What an export produced and measured, as the CLI prints it and the desktop shows it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from annotune.core.display_names import metric_title
from annotune.core.export.validation import COST_LIMIT_POINTS, ValidationReport
from annotune.core.long_texts import describe


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

    # -- the three lines people read first ----------------------------------------------------
    def headline(self, remedy: str = "export again without --int8") -> list[str]:
        """Return size, speed and accuracy cost in three plain lines (details follow them).

        ``remedy`` is how the caller's interface says "keep fp32" (a flag, a radio button).
        """
        return [self.size_line(), self.speed_line(), self.accuracy_line(remedy)]

    def size_line(self) -> str:
        """Say how large the model is, and for int8 how much smaller than fp32."""
        if self.quantized and self.fp32_bytes and self.model_bytes:
            return (f"Size:     {_mib(self.model_bytes)} int8 model, "
                    f"{self.fp32_bytes / self.model_bytes:.1f}× smaller than fp32 "
                    f"({_mib(self.fp32_bytes)})")
        return f"Size:     {_mib(self.model_bytes)} {'int8' if self.quantized else 'fp32'} model"

    def speed_line(self) -> str:
        """Say how long one example takes on this machine's CPU."""
        return (f"Speed:    {self.latency_ms:.2f} ms per example on this computer's CPU "
                "(one at a time, tokenizing included)")

    def accuracy_line(self, remedy: str = "export again without --int8") -> str:
        """Say what the bundle's precision costs in the run's main metric on validation data."""
        validation = self.validation
        if not self.quantized:
            if validation is None:
                return ("Accuracy: exact: the fp32 model computes what the trained model "
                        "computes (checked against PyTorch)")
            return (f"Accuracy: exact: fp32 keeps the trained model's "
                    f"{metric_title(validation.metric)} ({validation.show(validation.fp32)} on "
                    f"{validation.examples:,} validation examples)")
        if validation is None or validation.int8 is None:
            agreement = (f"; int8 decides {self.int8_agreement:.0%} of {self.parity_examples} "
                         "sample texts as fp32 does" if self.int8_agreement is not None else "")
            return f"Accuracy: unknown: the run kept no validation data{agreement}"
        cost = validation.int8_cost_points or 0.0
        title = metric_title(validation.metric)
        scores = (f"{validation.show(validation.int8)} against fp32's "
                  f"{validation.show(validation.fp32)} on {validation.examples:,} validation "
                  "examples")
        if cost <= 0:
            return f"Accuracy: no cost: int8 scores {title} {scores}"
        if not validation.over_allowance:
            return (f"Accuracy: int8 costs {cost:.2f} points of {title} ({scores}), within "
                    f"the {COST_LIMIT_POINTS} allowed")
        return (f"Accuracy: int8 costs {cost:.2f} points of {title} ({scores}), more than the "
                f"{COST_LIMIT_POINTS} allowed. The int8 model was written as asked; to keep "
                f"fp32's accuracy, {remedy}")

    def __str__(self) -> str:
        """Describe the export: the three plain lines, then the details (what the CLI prints)."""
        return "\n".join([*self.headline(), "", *self.details()])

    def details(self) -> list[str]:
        """Return the details: files, graph, parity, int8 agreement, validation, notes."""
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
        long_texts = long_text_line(self.validation)
        if long_texts:
            lines.append(f"long texts  {long_texts}")
        lines.append(f"latency     {self.latency_ms:.2f} ms per example (batch 1, CPU)")
        lines.extend(f"note        {note}" for note in self.notes)
        return lines

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bundle_dir"] = str(self.bundle_dir)
        data["model_path"] = str(self.model_path)
        data["model_bytes"] = self.model_bytes
        data["validation"] = self.validation.to_dict() if self.validation else None
        data["headline"] = self.headline()
        return data


NO_VALIDATION = ("no validation data was available (the run has no validation.jsonl; "
                 "runs trained by older versions lack it)")


def validation_lines(validation: ValidationReport | None) -> list[str]:
    """Describe the validation scores in one or two lines (the CLI and the desktop show them)."""
    if validation is None:
        return [NO_VALIDATION]
    recorded = validation.recorded_summary()
    return [validation.summary()] + ([recorded] if recorded else [])


def long_text_line(validation: ValidationReport | None) -> str | None:
    """Say how many validation texts were read in several windows or cut (None: not counted)."""
    counts = validation.long_texts if validation is not None else None
    if not counts:
        return None
    length = counts.get("max_length", 0)
    return describe(counts, length) or (f"none of the {counts.get('examples', 0):,} validation "
                                        f"texts is longer than {length} tokens")


def _mib(size: int | None) -> str:
    return f"{(size or 0) / 2**20:.1f} MiB"
