"""Describe an export in the bundle's manifest: task, settings, graph, checks and scores."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from annotune.core import bundle as bundle_files
from annotune.core.export.trace import OPSET
from annotune.core.export.validation import ValidationReport
from annotune.core.tasks import Task, TaskSettings


def manifest_fields(run: Mapping[str, Any], task: Task, settings: TaskSettings,
                    parity: dict[str, Any], quantization: dict[str, Any] | None,
                    fp32_bytes: int, inputs: Sequence[str], validation: ValidationReport | None,
                    fusion: Mapping[str, int] | None) -> dict[str, Any]:
    """Return the manifest's entries (``bundle.write_manifest`` adds the files and checksums)."""
    from annotune.core import __version__

    if quantization is not None:
        quantization["fp32_bytes"] = fp32_bytes
    return {
        "task": task.name,
        "settings": settings.to_dict(),
        "labels": list(settings.labels),
        "max_length": settings.max_length,
        "windowing": {"max_length": settings.max_length, "stride": settings.stride},
        "metrics": run.get("metrics") or {},
        "main_metric": run.get("main_metric") or getattr(task, "main_metric", None),
        "base_model": run.get("base_model"),
        "training": {"config": run.get("config"), "device": run.get("device"),
                     "best_epoch": run.get("best_epoch")},
        "annotune_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": bundle_files.MODEL_NAME,
        "model_data": bundle_files.MODEL_DATA_NAME,
        "tokenizer": bundle_files.TOKENIZER_NAME,
        "onnx": {"opset": OPSET, "inputs": list(inputs), "outputs": list(task.output_names),
                 "sequence_outputs": bool(task.sequence_outputs),
                 "dynamic_axes": ["batch", "sequence"], "dtype": "int8" if quantization
                 else "float32",
                 # onnxruntime's fused operators in the graph (None: the graph as traced)
                 "fused_operators": dict(fusion) if fusion else None},
        "quantization": quantization,
        "parity": parity,
        "validation": validation.to_dict() if validation else None,
    }
