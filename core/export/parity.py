"""Run checked batches through onnxruntime and compare outputs and predictions, for export.

Numpy only at import (onnxruntime is imported when a session opens). Sequence outputs are
compared at real (unpadded) token positions only: what a model writes at padding is never read
by ``Task.decode``, so it must not fail an export.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annotune.core.errors import AnnotuneError
from annotune.core.features import collate, length_sorted_batches, split_outputs
from annotune.core.runtime import open_session
from annotune.core.tasks import Feature, Task

FP32_TOLERANCE = 1e-4  # max abs difference between PyTorch and onnxruntime fp32 outputs
PARITY_BATCH = 16  # features per parity batch: mixed lengths, so padding is exercised


def real_rows(outputs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """Group per-feature (already unpadded) outputs by output name."""
    grouped: dict[str, list[np.ndarray]] = {}
    for output in outputs:
        for name, value in output.items():
            grouped.setdefault(name, []).append(np.asarray(value, dtype=np.float64))
    return grouped


def max_abs_diff(reference: Sequence[Mapping[str, np.ndarray]],
                 candidate: Sequence[Mapping[str, np.ndarray]]) -> dict[str, float]:
    """Return, per output name, the largest absolute difference over all features."""
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference features but {len(candidate)} candidates")
    ref, cand = real_rows(reference), real_rows(candidate)
    diffs = {}
    for name, rows in ref.items():
        worst = 0.0
        for a, b in zip(rows, cand.get(name, []), strict=True):
            if a.shape != b.shape:
                raise ValueError(f"output '{name}' has shape {b.shape}, expected {a.shape}")
            if a.size:
                diff = float(np.max(np.abs(a - b)))
                worst = diff if np.isnan(diff) else max(worst, diff)
                if np.isnan(worst):
                    break  # NaN anywhere is the verdict: keep it, max() would drop it
        diffs[name] = worst
    return diffs


def signal_to_noise_db(reference: Sequence[Mapping[str, np.ndarray]],
                       candidate: Sequence[Mapping[str, np.ndarray]]) -> float:
    """Return the candidate's signal-to-quantization-noise ratio against the reference, in dB.

    10·log10(Σ reference² / Σ (reference − candidate)²) over every output at real positions:
    a continuous measure of how closely a quantized model reproduces the fp32 one, which a
    metric on a few dozen validation examples cannot give. inf when the outputs are equal,
    -inf when the candidate's are not finite.
    """
    ref, cand = real_rows(reference), real_rows(candidate)
    signal = noise = 0.0
    for name, rows in ref.items():
        for a, b in zip(rows, cand.get(name, []), strict=True):
            signal += float(np.sum(a * a))
            noise += float(np.sum((a - b) ** 2))
    if not np.isfinite(noise):
        return -math.inf
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0.0 else -math.inf


def argmax_agreement(reference: Sequence[Mapping[str, np.ndarray]],
                     candidate: Sequence[Mapping[str, np.ndarray]]) -> float:
    """Return the share of rows (examples, or real tokens) whose argmax agrees."""
    same = total = 0
    for a_out, b_out in zip(reference, candidate, strict=True):
        for name, a in a_out.items():
            a, b = np.asarray(a), np.asarray(b_out[name])
            if a.ndim == 0 or a.size == 0:
                continue
            # 1-D rows (class logits, QA start/end logits) give one decision each; 2-D
            # rows (NER logits per token) give one per token.
            equal = np.argmax(a, axis=-1) == np.argmax(b, axis=-1)
            same += int(np.sum(equal))
            total += int(np.size(equal))
    return same / total if total else 1.0


def decision(prediction: Any) -> Any:
    """Strip confidence figures from a prediction, keeping what it decided.

    Floats (scores, probabilities) are dropped at every depth, so ``{"label": "pos",
    "score": 0.9}`` and ``{"label": "pos", "score": 0.8}`` decide the same thing.
    """
    if isinstance(prediction, Mapping):
        kept = {}
        for key, value in prediction.items():
            if isinstance(value, float):
                continue
            if isinstance(value, Mapping) and value and all(
                    isinstance(v, float) for v in value.values()):
                continue
            kept[key] = decision(value)
        return kept
    if isinstance(prediction, list | tuple):
        return [decision(item) for item in prediction]
    return prediction


def prediction_agreement(reference: Sequence[Any], candidate: Sequence[Any]) -> float:
    """Return the share of examples whose decoded decision is identical."""
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference predictions but {len(candidate)} candidates")
    if not reference:
        return 1.0
    same = sum(decision(a) == decision(b) for a, b in zip(reference, candidate, strict=True))
    return same / len(reference)


def parity_error(diffs: Mapping[str, float], n_features: int, where: Path) -> AnnotuneError:
    """Return the error that fails an export whose graph disagrees with PyTorch."""
    figures = ", ".join(f"{name} {diff:.3g}" for name, diff in diffs.items())
    return AnnotuneError(
        f"ONNX parity check failed: onnxruntime and PyTorch disagree by up to "
        f"{max(diffs.values()):.3g} (tolerance {FP32_TOLERANCE:g}) on {n_features} sample "
        f"windows ({figures}); no bundle was written", where=str(where),
        hint="report this with the run folder; the run's checkpoint is still usable "
             "with transformers")


# -- running the exported graph ------------------------------------------------------------

def onnx_session(path: Path) -> Any:
    """Open an onnxruntime CPU session like the Predictor does."""
    return open_session(path, device="cpu")


def onnx_outputs(session: Any, batch: Mapping[str, np.ndarray], output_names: Sequence[str]
                 ) -> dict[str, np.ndarray]:
    """Run one batch through an onnxruntime session; return outputs by name."""
    feed = {i.name: batch[i.name] for i in session.get_inputs()}
    values = session.run(list(output_names), feed)
    return dict(zip(output_names, values, strict=True))


def run_onnx(path: Path, features: Sequence[Feature], pad_token_id: int, task: Task,
             by_length: bool = False, batch_size: int | None = None
             ) -> tuple[list[dict[str, np.ndarray]], list[str]]:
    """Run features through a fresh session of ``path``; return outputs and the graph's inputs.

    The session is closed on return: it maps model.onnx.data, which int8 export replaces and
    the final rename moves (Windows refuses both on a mapped file). ``by_length`` batches
    features of similar length (see ``run_batches``).
    """
    session = onnx_session(path)
    outputs = run_batches(features, pad_token_id, task,
                          lambda batch: onnx_outputs(session, batch, task.output_names),
                          by_length=by_length, batch_size=batch_size)
    return outputs, [i.name for i in session.get_inputs()]  # DistilBERT-like graphs take two


def run_batches(features: Sequence[Feature], pad_token_id: int, task: Task, run_one: Any,
                by_length: bool = False, batch_size: int | None = None
                ) -> list[dict[str, np.ndarray]]:
    """Run features PARITY_BATCH (or ``batch_size``) at a time; return outputs in input order.

    Batches follow input order by default, so mixed lengths exercise padding (the parity
    check); ``by_length`` groups similar lengths instead, as the Predictor does, which scores
    thousands of validation examples with little padding.
    """
    size = batch_size or PARITY_BATCH
    if by_length:
        batches = list(length_sorted_batches(features, size))
    else:
        batches = [list(range(start, min(start + size, len(features))))
                   for start in range(0, len(features), size)]
    per_feature: list[dict[str, np.ndarray]] = [{} for _ in features]
    for indices in batches:
        chunk = [features[i] for i in indices]
        outputs = run_one(collate(chunk, pad_token_id))
        for index, piece in zip(indices, split_outputs(outputs, chunk, task.sequence_outputs),
                                strict=True):
            per_feature[index] = piece
    return per_feature
