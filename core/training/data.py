"""Training data: the validation split, length-bucketed batches, tensors on device."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from annotune.core.tasks import ExampleOrigin, Task
from annotune.core.training.validation_split import (
    Item,
    ValidationSplit,
    choose_validation,
    describe_given_split,
)

# Batches are cut from windows of this many batches' worth of features sorted by length:
# wide enough that batches hold similar lengths (little padding), narrow enough that the
# order stays random across the data set.
BUCKET_BATCHES = 50


def split_validation(items: Sequence[Item], task: Task, fraction: float, seed: int,
                     origins: Sequence[ExampleOrigin] | None = None
                     ) -> tuple[list[Item], list[Item]]:
    """Hold out ``fraction`` of the items for validation, stratified by ``task.stratify_key``,
    each group of ``task.group_keys`` on one side (core/training/validation_split.py).

    Every label of two or more examples gives at least one to validation and keeps at least
    one for training. The same items and seed always give the same split.
    """
    split = choose_validation(items, task, fraction, seed, origins)
    return split.train, split.validation


def settle_validation(train_data: Sequence[Item], val_data: Sequence[Item] | None, task: Task,
                      fraction: float, seed: int, record: Mapping[str, Any] | None = None
                      ) -> ValidationSplit:
    """Return the items to train and validate on, and how validation was chosen.

    Without ``val_data`` the split is made here (texts only: no document origins); with it,
    ``record`` (from the caller that split) or a description of the given split is kept.
    """
    if not val_data:
        return choose_validation(train_data, task, fraction, seed)
    return ValidationSplit(list(train_data), list(val_data), dict(record) if record else
                           describe_given_split(train_data, val_data, task))


def bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int
                     ) -> list[list[int]]:
    """Return index batches of similar lengths, in a random order fixed by (seed, epoch).

    Shuffle all indices, sort windows of ``BUCKET_BATCHES`` batches by length, cut them into
    batches and shuffle the batches: padding stays small and every epoch sees a new order.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)).tolist()
    window = batch_size * BUCKET_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches.extend(chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size))
    permutation = rng.permutation(len(batches))
    return [batches[i] for i in permutation]


def to_device(arrays: Mapping[str, np.ndarray], device: torch.device,
              keep: set[str] | None = None) -> dict[str, torch.Tensor]:
    """Turn collated numpy arrays into tensors on ``device`` (pinned, asynchronous on CUDA).

    ``keep``: the input names the model accepts; other arrays are dropped.
    """
    tensors = {}
    for name, array in arrays.items():
        if keep is not None and name not in keep:
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if device.type == "cuda":
            tensor = tensor.pin_memory().to(device, non_blocking=True)
        tensors[name] = tensor
    return tensors
