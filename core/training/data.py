"""Training data: the automatic validation split, length-bucketed batches, tensors on device."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from annotune.core.errors import AnnotuneError
from annotune.core.tasks import Task

# One labeled example as the loop receives it: (fields, annotation).
Item = tuple[Mapping[str, str], dict[str, Any]]

# Batches are cut from windows of this many batches' worth of features sorted by length:
# wide enough that batches hold similar lengths (little padding), narrow enough that the
# order stays random across the data set.
BUCKET_BATCHES = 50


def split_validation(items: Sequence[Item], task: Task, fraction: float, seed: int
                     ) -> tuple[list[Item], list[Item]]:
    """Hold out ``fraction`` of the items for validation, stratified by ``task.stratify_key``.

    Every group (label) of two or more examples gives at least one to validation and keeps at
    least one for training. The same items and seed always give the same split.
    """
    if len(items) < 2:
        raise AnnotuneError(f"training needs at least 2 labeled examples, the project has "
                            f"{len(items)}", hint="label more examples first")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, (_, annotation) in enumerate(items):
        groups[task.stratify_key(annotation)].append(index)
    rng = random.Random(seed)
    held_out: list[int] = []
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        if len(members) < 2:
            continue
        take = min(max(1, round(len(members) * fraction)), len(members) - 1)
        held_out.extend(members[:take])
    if not held_out:  # only one-example groups: validate on one of them
        held_out.append(rng.randrange(len(items)))
    chosen = set(held_out)
    train = [item for i, item in enumerate(items) if i not in chosen]
    validation = [item for i, item in enumerate(items) if i in chosen]
    return train, validation


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
