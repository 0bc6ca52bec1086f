"""Choose fp32 or half precision for a run by timing a few steps of its own batches.

Whether bf16 (or fp16) autocast beats fp32 with TF32 depends on the GPU, the model and the
input shape: on an H200, BERT-base on sentence-length inputs (batch 32, about 25 tokens)
trained about 2x slower with bf16 autocast, because such steps are bound by kernel launches
and autocast adds cast kernels; on 128-token inputs the matrix products dominate and half
precision is expected to win. On CPUs with bf16 instructions (AVX512-BF16, AMX) bf16 ran
1.6x the speed of fp32 for the MiniLM shape, on others it is emulated and slower. So "auto"
measures instead of guessing: a few forward and backward passes of a representative batch in
each precision, then the faster, with fp32 kept unless half precision is clearly faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from annotune.core.training.device import autocast_dtype, half_precision
from annotune.core.training.memory import BatchSizes, restore_rng, retry_on_oom, rng_state

MARGIN = 0.05  # half precision must be this much faster than fp32 to be chosen
WARMUP = 2  # untimed steps per precision: first calls pick kernels and fill caches
REPEATS = 5  # timed steps per precision; the median counts
PERCENTILE = 0.9  # the probe batch's padded length among the run's batches
CPU_PROBE_ROWS = 8  # rows of the probe batch on the CPU


def probe(step: Callable[[str], None], candidates: Sequence[str] = ("fp32", "bf16"),
          clock: Callable[[], float] = time.perf_counter, sync: Callable[[], None] = lambda: None,
          warmup: int = WARMUP, repeats: int = REPEATS, margin: float = MARGIN
          ) -> tuple[str, dict[str, float]]:
    """Time ``step(precision)`` for each candidate; return the choice and median ms per step.

    The first candidate is the reference (fp32); another one is chosen only when its median
    is faster than the reference's by more than ``margin`` (never when it is slower). Timed
    steps alternate between the candidates, so a clock boost or a busy neighbour hits all of
    them alike; ``sync`` waits for queued GPU work before the clock is read.
    """
    for precision in candidates:
        for _ in range(warmup):
            step(precision)
    samples: dict[str, list[float]] = {precision: [] for precision in candidates}
    for _ in range(max(1, repeats)):
        for precision in candidates:
            sync()
            begin = clock()
            step(precision)
            sync()
            samples[precision].append(clock() - begin)
    timings = {p: round(statistics.median(s) * 1000, 3) for p, s in samples.items()}
    reference = candidates[0]
    choice = min(candidates, key=lambda p: (timings[p], p != reference))
    if choice != reference and not timings[choice] < timings[reference] * (1 - max(margin, 0)):
        choice = reference
    return choice, timings


def probe_batch(lengths: Sequence[int], batches: Sequence[Sequence[int]], size: int
                ) -> list[int]:
    """Return ``size`` indices of the batch at the 90th percentile of padded length.

    A long batch, not the longest: the speed that matters is that of the typical step, and
    the longest batch is often a lone outlier. Full batches are preferred over the short
    last one of a bucket.
    """
    full = [b for b in batches if len(b) >= size] or list(batches)
    full.sort(key=lambda b: max(lengths[i] for i in b))
    chosen = full[min(len(full) - 1, int(PERCENTILE * len(full)))]
    return sorted(chosen, key=lambda i: -lengths[i])[:size]


def measure_precision(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor],
                      device: torch.device, half: str,
                      clock: Callable[[], float] = time.perf_counter,
                      margin: float | None = None) -> tuple[str, dict[str, float]]:
    """Time training steps of ``model`` on ``inputs`` in fp32 and in ``half``; return the choice.

    Steps are forward and backward passes without an optimizer step; the gradients are
    dropped after each, and the random generators are put back afterwards, so the run
    trains exactly as it would have without the probe. fp16 is timed with loss scaling,
    as it trains.
    """
    scaler = torch.amp.GradScaler(device.type, enabled=half == "fp16" and device.type == "cuda")
    was_training = model.training
    model.train()

    def step(precision: str) -> None:
        dtype = autocast_dtype(precision)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model(**inputs).loss
        loss = loss.float()
        (scaler.scale(loss) if precision == "fp16" else loss).backward()
        model.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    state = rng_state(device)
    try:
        # CPU steps take a hundred times longer than GPU ones: fewer of them still give a
        # clear answer when bf16 wins (by about 1.6x where the CPU has bf16 instructions).
        counts = {"warmup": 1, "repeats": 2} if device.type == "cpu" else {}
        return probe(step, ("fp32", half), clock, sync,
                     margin=MARGIN if margin is None else margin, **counts)
    finally:
        model.zero_grad(set_to_none=True)
        restore_rng(state, device)
        model.train(was_training)


def choose_precision(model: torch.nn.Module, lengths: Sequence[int],
                     batches: Sequence[Sequence[int]],
                     inputs_for: Callable[[list[int]], Mapping[str, torch.Tensor]],
                     sizes: BatchSizes, device: torch.device) -> tuple[str, dict[str, Any]]:
    """Time fp32 against the device's half precision on a long micro-batch of the run's own.

    Returns the precision to train in and the probe's figures (``probe_record``). A probe
    that runs out of GPU memory halves the micro-batch like a training step would.
    """
    def timed() -> tuple[str, dict[str, float], list[int]]:
        piece = probe_batch(lengths, batches, sizes.micro_batch_size)
        if device.type == "cpu":
            # A few rows tell as well (measured bf16/fp32 on the MiniLM shape at 43 tokens:
            # 1.58x with 8 rows, 1.65x with 32) at a quarter of the probe's time.
            piece = piece[:CPU_PROBE_ROWS]
        choice, timings = measure_precision(model, inputs_for(piece), device,
                                            half_precision(device))
        return choice, timings, piece

    choice, timings, piece = retry_on_oom(timed, sizes, "train",
                                          lambda: model.zero_grad(set_to_none=True), device)
    record = probe_record(choice, timings, max(lengths[i] for i in piece), len(piece))
    return choice, {**record, "device": device.type}


def probe_record(choice: str, timings: Mapping[str, float], length: int, batch: int
                 ) -> dict[str, Any]:
    """Return the probe's figures for run.json and the "precision" event."""
    return {**{f"{p}_ms": ms for p, ms in timings.items()}, "length": length, "batch": batch,
            "chosen": choice}


def probe_message(record: Mapping[str, Any]) -> str:
    """Say in one line what the probe measured and what the run trains in."""
    half = "fp16" if "fp16_ms" in record else "bf16"
    fp32_ms, half_ms = record["fp32_ms"], record[f"{half}_ms"]
    speed = fp32_ms / half_ms if half_ms > 0 else float("inf")
    shown = record["chosen"]
    if shown == "fp32" and record.get("device", "cuda") == "cuda":
        shown = "fp32 (TF32)"
    return (f"{half} ran {speed:.2f}x the speed of fp32 on {record['batch']} x "
            f"{record['length']}-token steps: training in {shown}")
