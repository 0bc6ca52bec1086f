"""Measure how fast a written bundle answers one example at a time, as a user's program would."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def measure_latency(bundle_dir: Path, examples: Sequence[Mapping[str, str]]) -> float:
    """Return milliseconds per example at batch 1 through the Predictor, tokenizing included."""
    from annotune.core.inference import Predictor

    predictor = Predictor(bundle_dir, batch_size=1)
    predictor.predict(list(examples[:1]))  # warm-up: first run allocates onnxruntime buffers
    started = time.perf_counter()
    for example in examples:
        predictor.predict([example])
    return (time.perf_counter() - started) * 1000.0 / max(len(examples), 1)
