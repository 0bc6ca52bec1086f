"""Adapt the batch sizes to the GPU's memory, and state how much memory a run needed.

A step that runs out of GPU memory is not a failed run: the loop drops the step's partial
gradients, halves the features per forward pass (doubling the gradient accumulation, so the
optimizer still sees the whole batch and the maths stay the same) and redoes that step.
Evaluation halves its batch the same way. Only a single feature that does not fit is an error.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from annotune.core.errors import AnnotuneError
from annotune.core.events import Emit, MemoryReduced

T = TypeVar("T")
# torch.cuda.OutOfMemoryError is the same class; naming the top-level one keeps MPS and
# other accelerators that raise it covered too
OUT_OF_MEMORY: tuple[type[BaseException], ...] = (torch.OutOfMemoryError,)


@dataclass
class BatchSizes:
    """Hold the features per forward pass in training and evaluation; halve them on OOM.

    ``batch_size`` is the optimizer's batch and never changes; ``micro_batch_size`` is what
    one training forward pass sees (the batch is cut into ceil(batch / micro) pieces) and
    ``eval_batch_size`` what one evaluation forward pass sees.
    """

    batch_size: int
    micro_batch_size: int
    eval_batch_size: int
    max_length: int | None = None
    emit: Emit = field(default=lambda event: None, repr=False)
    reductions: int = 0

    @property
    def gradient_accumulation(self) -> int:
        """Forward passes per optimizer step at the current micro-batch size."""
        return math.ceil(self.batch_size / self.micro_batch_size)

    def size(self, phase: str) -> int:
        """Return the features per forward pass of ``phase`` ("train" or "eval")."""
        return self.micro_batch_size if phase == "train" else self.eval_batch_size

    def shrink(self, phase: str) -> None:
        """Halve the forward pass of ``phase`` and announce it with a "memory" event."""
        old = self.size(phase)
        if old <= 1:
            raise self.too_big(phase)
        if phase == "train":
            self.micro_batch_size = old // 2
            message = (f"GPU memory full at {old} examples per step: continuing with "
                       f"{self.micro_batch_size} per step (same results, gradient "
                       f"accumulation {self.gradient_accumulation})")
        else:
            self.eval_batch_size = old // 2
            message = (f"GPU memory full while evaluating {old} examples at once: continuing "
                       f"with {self.eval_batch_size} at once (same results)")
        self.reductions += 1
        self.emit(MemoryReduced(event="memory", phase=phase,
                                micro_batch_size=self.micro_batch_size,
                                gradient_accumulation=self.gradient_accumulation,
                                eval_batch_size=self.eval_batch_size, message=message))

    def too_big(self, phase: str) -> AnnotuneError:
        """Return the error for a single feature that does not fit in the GPU's memory."""
        what = "training" if phase == "train" else "evaluation"
        length = f" with max length {self.max_length}" if self.max_length else ""
        return AnnotuneError(
            f"the GPU ran out of memory during {what} at micro-batch 1{length}",
            hint="lower max_length, or choose a smaller base model (or train on the CPU)")

    def record(self, device: torch.device) -> dict[str, Any]:
        """Return the sizes the run ended with and its peak GPU memory, for run.json."""
        return {"micro_batch_size": self.micro_batch_size,
                "gradient_accumulation": self.gradient_accumulation,
                "eval_batch_size": self.eval_batch_size, "reductions": self.reductions,
                "peak_gpu_memory_gb": peak_gpu_memory_gb(device)}


def retry_on_oom(attempt: Callable[[], T], sizes: BatchSizes, phase: str,
                 clean: Callable[[], None], device: torch.device) -> T:
    """Return ``attempt()``; after each out-of-memory error clean up, shrink and redo it.

    ``attempt`` reads the current size from ``sizes`` each time. ``clean`` drops what a
    failed attempt left behind (partial gradients). The random generators are put back
    before each redo, so a redone step draws the same dropout masks as a first try. Memory
    is freed outside the ``except`` block: the exception's traceback holds the failed
    attempt's tensors.
    """
    state = rng_state(device)
    while True:
        try:
            return attempt()
        except OUT_OF_MEMORY as error:
            if sizes.size(phase) <= 1:
                raise sizes.too_big(phase) from error
        clean()
        free_memory(device)
        restore_rng(state, device)
        sizes.shrink(phase)


def free_memory(device: torch.device) -> None:
    """Return cached blocks to the GPU after a failed step (collect the Python garbage first)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def reset_peak(device: torch.device) -> None:
    """Start counting the peak GPU memory from now (no-op off CUDA)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gpu_memory_gb(device: torch.device) -> float | None:
    """Return the most GPU memory tensors held since ``reset_peak``, in GiB; None off CUDA."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2)


def rng_state(device: torch.device) -> dict[str, Any]:
    """Snapshot torch's random generators (CPU, and the GPU's when training there)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Put torch's random generators back where ``rng_state`` found them."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
