"""Tokenizer set-up, batching and output splitting shared by training, evaluation and inference.

Numpy and tokenizers only: the torch-free Predictor imports this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import cast

import numpy as np
from tokenizers import Tokenizer

from annotune.core.tasks import Feature, Target, Task

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Features per batch of the Predictor, and of the export's validation scoring: dynamic int8
# quantizes each batch's activations with one scale, so an int8 model's predictions depend a
# little on which texts share a batch, and the export scores the way the bundle will run.
PREDICT_BATCH_SIZE = 32


def prepare_tokenizer(source: Tokenizer | str | Path) -> Tokenizer:
    """Return a tokenizer that neither pads nor truncates.

    Tasks cut their own windows, and batches are padded to their longest member only; a
    tokenizer.json that pads every input to its max length makes short texts many times slower.
    """
    if isinstance(source, Tokenizer):
        tokenizer = Tokenizer.from_str(source.to_str())
    else:
        tokenizer = Tokenizer.from_file(str(source))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def pad_id(tokenizer: Tokenizer) -> int:
    """Id of the padding token ([PAD] for BERT vocabularies, <pad> for RoBERTa-style ones)."""
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0


def collate(features: Sequence[Feature], pad_token_id: int, task: Task | None = None,
            with_targets: bool = False) -> dict[str, np.ndarray]:
    """Pad a batch to its longest feature; add the task's target arrays when asked."""
    seq_len = max(len(f) for f in features)
    batch = len(features)
    input_ids = np.full((batch, seq_len), pad_token_id, dtype=np.int64)
    token_type_ids = np.zeros((batch, seq_len), dtype=np.int64)
    attention_mask = np.zeros((batch, seq_len), dtype=np.int64)
    for row, feature in enumerate(features):
        n = len(feature)
        input_ids[row, :n] = feature.input_ids
        token_type_ids[row, :n] = feature.token_type_ids
        attention_mask[row, :n] = 1
    arrays = {"input_ids": input_ids, "attention_mask": attention_mask,
              "token_type_ids": token_type_ids}
    if with_targets:
        assert task is not None, "targets need the task that collates them"
        # features encoded with their annotations carry a target each
        targets = [cast("Target", f.target) for f in features]
        arrays.update(task.collate_targets(targets, seq_len))
    return arrays


# A batch is closed before a feature that would make its padding exceed this share of its
# real tokens. Sorting alone still pads 32 texts of 5 to 60 tokens to 60: on 32 SST-2
# sentences per call (bundled MiniLM, 2 cores) the int8 bundle went from 2.41 to 1.01 ms per
# sentence and PyTorch from 5.0 to 3.3 (0.1: more, smaller runs, 1.38 ms; 0.5: 1.09 ms).
MAX_PADDING = 0.25


def length_sorted_batches(features: Sequence[Feature], batch_size: int) -> Iterator[list[int]]:
    """Yield index batches of similar lengths (little padding; callers restore the order).

    Features are sorted by length and taken in order; a batch ends at ``batch_size`` features
    or before one whose length would pad the batch by more than ``MAX_PADDING``.
    """
    order = sorted(range(len(features)), key=lambda i: len(features[i]))
    lengths = [len(features[i]) for i in order]
    start = 0
    while start < len(order):
        end = batch_end(lengths, start, batch_size)
        yield order[start:end]
        start = end


def batch_end(sorted_lengths: Sequence[int], start: int, batch_size: int) -> int:
    """Return where the batch starting at ``start`` of ascending lengths ends (exclusive).

    At most ``batch_size`` features, and none whose length would pad the batch by more than
    ``MAX_PADDING`` of its real tokens. Training's evaluation calls it batch by batch, so a
    batch halved after running out of GPU memory follows the same rule.
    """
    end, tokens = start, 0
    while end < len(sorted_lengths) and end - start < batch_size:
        length = sorted_lengths[end]
        if end > start and (end - start + 1) * length > (tokens + length) * (1 + MAX_PADDING):
            break
        tokens += length
        end += 1
    return end


def split_outputs(outputs: Mapping[str, np.ndarray], features: Sequence[Feature],
                  sequence_outputs: bool) -> list[dict[str, np.ndarray]]:
    """Cut a batch of raw outputs into one unpadded mapping per feature."""
    per_feature = []
    for row, feature in enumerate(features):
        if sequence_outputs:
            per_feature.append({k: v[row, :len(feature)] for k, v in outputs.items()})
        else:
            per_feature.append({k: v[row] for k, v in outputs.items()})
    return per_feature


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))
