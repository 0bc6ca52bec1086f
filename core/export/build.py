"""One export under way: the stages that turn a trained run into the files of a bundle.

``ExportBuild`` holds what the export starts from (a ``TrainedRun``), the hidden folder it
writes into, and what each stage has produced; each stage is one method, called in order by
``export_run`` (core/export/pipeline.py):

1. ``trace``: the checkpoint traced to ONNX on a padded batch of mixed lengths;
2. ``check_parity``: the graph fused (when asked and the architecture allows), then run by
   onnxruntime and PyTorch on the same padded batches; a fused graph that drifts falls back
   to the traced one, a traced one that drifts fails the export;
3. ``score_validation``: the fp32 bundle scored on the run's validation data, as evaluation
   after training scored the checkpoint;
4. ``quantize_int8``: when asked, model.onnx replaced by the better of two int8 candidates;
5. ``write_files``: the tokenizer and the manifest;
6. ``report``: what was written and measured, latency included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotune.core import bundle as bundle_files
from annotune.core.bundle import Manifest
from annotune.core.export.fusion import encoder_shape, fuse_encoder
from annotune.core.export.latency import measure_latency
from annotune.core.export.manifest import manifest_fields
from annotune.core.export.parity import (
    FP32_TOLERANCE,
    max_abs_diff,
    parity_error,
    run_batches,
    run_onnx,
)
from annotune.core.export.quantize import Int8Candidate, quantize_bundle_model
from annotune.core.export.report import ExportReport
from annotune.core.export.trace import export_onnx, load_model, onnx_module, torch_outputs
from annotune.core.export.trained_run import TrainedRun
from annotune.core.export.validation import Scored, ValidationReport, ValidationScorer
from annotune.core.features import collate

TRACED_NAME = "traced.onnx"
FUSED_NAME = "fused.onnx"


@dataclass
class CheckedGraph:
    """The graph written as model.onnx and what the parity check measured on it."""

    source: Path  # the traced or the fused graph
    fused: dict[str, int] | None  # onnxruntime's fused operators (None: as traced)
    outputs: list[dict[str, np.ndarray]]  # onnxruntime's outputs on the parity features
    inputs: list[str]  # the graph's inputs (DistilBERT-like graphs take two)
    diffs: dict[str, float]  # largest |onnxruntime - PyTorch| per output

    @property
    def max_diff(self) -> float:
        """Return the largest difference over every output."""
        return max(self.diffs.values())


@dataclass
class ExportBuild:
    """A trained run being written into ``folder`` as a bundle, one stage per method."""

    source: TrainedRun
    folder: Path  # the hidden folder renamed into place when every stage has passed
    quantize: bool = False
    fuse: bool = True
    stage: Callable[[str], Any] = lambda _text: None  # told each stage as it starts
    # what the stages produced, in order
    module: Any = None  # trace: the checkpoint wrapped for the exporter
    graph: CheckedGraph | None = None  # check_parity
    fp32_bytes: int = 0
    scorer: ValidationScorer | None = None  # score_validation
    fp32_scored: Scored | None = None
    validation: ValidationReport | None = None
    quantization: dict[str, Any] | None = None  # quantize_int8: the manifest's entry
    int8: Int8Candidate | None = None
    manifest: Manifest | None = None  # write_files
    notes: list[str] = field(default_factory=list)

    @property
    def model_path(self) -> Path:
        """Return where the bundle's graph is written (its weights go beside it)."""
        return self.folder / bundle_files.MODEL_NAME

    def trace(self) -> None:
        """Trace the checkpoint: a padded batch of mixed lengths, so no axis is frozen at 1."""
        source = self.source
        self.stage("loading the model")
        self.module = onnx_module(load_model(source.task, source.model_dir),
                                  source.task.output_names)
        features = source.features
        batch = list(features[:4]) if len(features) > 1 else [features[0], features[0]]
        self.stage("exporting to ONNX")
        export_onnx(self.module, collate(batch, source.pad_token_id), source.task,
                    self.folder / TRACED_NAME)

    def check_parity(self) -> None:
        """Write model.onnx, fused when asked and faithful; fail when the traced graph drifts.

        PyTorch and onnxruntime run the same padded batches and must agree to FP32_TOLERANCE
        at every real position. A fused graph that drifts is replaced by the traced one.
        """
        source, names = self.source, self.source.task.output_names
        self.stage(f"{'fusing the graph, ' if self.fuse else ''}checking parity on "
                   f"{len(source.features)} samples")
        reference = run_batches(source.features, source.pad_token_id, source.task,
                                lambda batch: torch_outputs(self.module, batch, names))
        traced, fused = self.folder / TRACED_NAME, None
        if self.fuse:
            fused = fuse_encoder(traced, self.folder / FUSED_NAME,
                                 encoder_shape(source.model_dir))
        graph = self.folder / FUSED_NAME if fused else traced
        while True:
            bundle_files.save_with_external_weights(graph, self.model_path)
            outputs, inputs = run_onnx(self.model_path, source.features, source.pad_token_id,
                                       source.task)
            checked = CheckedGraph(graph, fused, outputs, inputs,
                                   max_abs_diff(reference, outputs))
            if checked.max_diff <= FP32_TOLERANCE:
                break
            if graph == traced:  # (a NaN fails the comparison above and ends here too)
                raise parity_error(checked.diffs, len(source.features), source.model_dir)
            self.notes.append(f"the fused graph differed from PyTorch by "
                              f"{checked.max_diff:.2g}; the plain graph was exported instead")
            graph, fused = traced, None
        self.graph = checked
        self.fp32_bytes = bundle_files.model_size(self.model_path)

    def score_validation(self) -> None:
        """Score the fp32 bundle on the run's validation data (nothing when it kept none)."""
        source, data = self.source, self.source.validation
        if data is None or not data.features:
            return
        metric = str(source.run.get("main_metric") or source.task.main_metric)
        self.stage(f"scoring on {len(data.examples):,} validation examples")
        self.scorer = ValidationScorer(data, source.task, source.settings, metric,
                                       source.pad_token_id)
        self.fp32_scored = self.scorer.score(self.model_path)
        recorded = (source.run.get("metrics") or {}).get(metric)
        self.validation = ValidationReport(
            metric=metric, examples=len(data.examples), available=data.total,
            fp32=self.fp32_scored.score, scale=float(getattr(source.task, "metric_scale", 1.0)),
            recorded=float(recorded) if isinstance(recorded, int | float) else None,
            long_texts=data.long_texts)

    def quantize_int8(self) -> None:
        """Replace model.onnx by its int8 version when asked (see quantize_bundle_model)."""
        if not self.quantize:
            return
        assert self.graph is not None, "check_parity runs first"
        source = self.source
        self.stage("quantizing to int8")
        # From the inline graph: onnxruntime's pre-processing copies the model elsewhere and
        # would lose an external weights file.
        self.quantization, self.int8 = quantize_bundle_model(
            self.folder, self.graph.source, self.model_path, source.task, source.settings,
            source.examples, source.features, source.pad_token_id, self.graph.outputs,
            self.scorer, self.fp32_scored)
        if self.validation is not None and self.int8.on_validation is not None:
            self.validation.int8 = self.int8.on_validation.score
            self.validation.int8_agreement = self.int8.validation_agreement

    def write_files(self) -> None:
        """Drop the intermediate graphs; write the tokenizer and the manifest beside the model."""
        assert self.graph is not None, "check_parity runs first"
        source = self.source
        for name in (TRACED_NAME, FUSED_NAME):
            (self.folder / name).unlink(missing_ok=True)
        source.tokenizer.save(str(self.folder / bundle_files.TOKENIZER_NAME))
        parity = {"tolerance": FP32_TOLERANCE, "max_abs_diff": self.graph.max_diff,
                  "per_output": self.graph.diffs, "examples": len(source.examples),
                  "features": len(source.features),
                  "compared_at": "real (unpadded) positions, padded mixed-length batches"}
        self.manifest = bundle_files.write_manifest(self.folder, manifest_fields(
            source.run, source.task, source.settings, parity, self.quantization,
            self.fp32_bytes, self.graph.inputs, self.validation, self.graph.fused))

    def report(self) -> ExportReport:
        """Return what was written and measured, the bundle's latency included."""
        assert self.graph is not None, "check_parity runs first"
        assert self.manifest is not None, "write_files runs first"
        source, int8 = self.source, self.int8
        report = ExportReport(
            bundle_dir=self.folder, model_path=self.model_path,
            files={name: entry["bytes"] for name, entry in self.manifest["files"].items()},
            task=source.task.name, parity_max_diff=self.graph.max_diff,
            parity_per_output=self.graph.diffs, parity_examples=len(source.examples),
            parity_features=len(source.features), quantized=self.quantize,
            fp32_bytes=self.fp32_bytes,
            int8_bytes=bundle_files.model_size(self.model_path) if self.quantize else None,
            int8_agreement=int8.agreement if int8 else None,
            int8_argmax_agreement=int8.argmax if int8 else None,
            int8_scheme=(("per-channel" if int8.result.per_channel else "per-tensor")
                         if int8 else None),
            int8_sqnr_db=self.quantization["validation_sqnr_db"] if self.quantization else None,
            validation=self.validation, fused=self.graph.fused, notes=list(self.notes))
        self.stage("measuring speed")
        report.latency_ms = round(measure_latency(self.folder, source.examples), 3)
        if int8 is not None and int8.agreement < 1.0:
            report.notes.append(f"int8 changes {1 - int8.agreement:.0%} of the sample "
                                "predictions")
        if self.validation is not None:
            report.notes.extend(self.validation.notes())
        elif self.quantize:
            count = len(source.examples)
            report.notes.append(f"int8 was compared with fp32 on {count} sample"
                                f"{'s' if count != 1 else ''} only: without validation "
                                "data its accuracy cost is unknown")
        return report
