"""One training step: forward and backward over a batch in micro-batches, then the optimizer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch

from annotune.core.features import collate
from annotune.core.tasks import Feature, Task
from annotune.core.training.data import to_device
from annotune.core.training.distributed import Ranks
from annotune.core.training.memory import BatchSizes
from annotune.core.training.optimization import Optimization

Inputs = Callable[[Sequence[int]], dict[str, torch.Tensor]]


def batch_inputs(features: Sequence[Feature], pad_token_id: int, task: Task,
                 device: torch.device, accepted: set[str]) -> Inputs:
    """Return a maker of the model's inputs (targets included) for feature indices."""
    def inputs_for(piece: Sequence[int]) -> dict[str, torch.Tensor]:
        arrays = collate([features[i] for i in piece], pad_token_id, task, with_targets=True)
        return to_device(arrays, device, accepted)

    return inputs_for


class TrainingStep:
    """Train on one batch; out of memory, the step is redone in smaller micro-batches."""

    def __init__(self, forward: Callable[..., Any], amp_dtype: torch.dtype | None,
                 inputs_for: Inputs, optimization: Optimization, sizes: BatchSizes,
                 ranks: Ranks, retry: Callable[..., torch.Tensor], device: torch.device):
        self.forward, self.amp_dtype, self.inputs_for = forward, amp_dtype, inputs_for
        self.optimization, self.sizes, self.ranks = optimization, sizes, ranks
        self.retry, self.device = retry, device

    def __call__(self, batch: Sequence[int]) -> torch.Tensor:
        """Step the optimizer once for ``batch``; return its loss (on the device: no wait)."""
        # out of memory: the partial gradients are dropped and the same step is redone in
        # smaller micro-batches, so the optimizer steps once per batch
        loss = self.retry(partial(self.accumulate, batch), self.sizes, "train",
                          self.optimization.zero_grad, self.device)
        self.optimization.step()
        return loss

    def accumulate(self, batch: Sequence[int]) -> torch.Tensor:
        """Run forward and backward over ``batch`` in micro-batches; return its loss."""
        # micro-batches weighted by their share of the batch, so the summed gradient equals
        # that of the whole batch at once, whatever the micro-batch size (and however many
        # processes share the batch: each runs its own part, ranks.share)
        total = torch.zeros((), device=self.device)
        mine, weight = self.ranks.share(batch)
        size = self.sizes.micro_batch_size
        for start in range(0, len(mine), size):
            piece = mine[start:start + size]
            with self.ranks.syncing(last=start + size >= len(mine)):
                loss = self.run_model(self.inputs_for(piece)).loss
                loss = loss.float() * (len(piece) / len(batch) * weight)
                self.optimization.scaler.scale(loss).backward()
            total += loss.detach()
        return self.ranks.mean(total)

    def run_model(self, inputs: Mapping[str, torch.Tensor]) -> Any:
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            return self.forward(**inputs)
