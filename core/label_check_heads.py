"""The cheap label check: the frozen encoder reads every example once, a head trains per fold.

Fine-tuning k models costs k trainings; on a CPU that is hours for a few thousand examples.
Here the base model's encoder runs once over all examples (no gradients), and each fold only
fits a linear head on the other folds' encoder states: seconds per fold. It runs for tasks whose
model has one ``logits`` output: classification (mean of the token states, the
sentence-transformers pooling) and NER (each token's state); QA needs fine-tuned folds.
Measured (docs/benchmarks.md, bench/label_errors.py): on SST-2 it finds most flipped labels
with less precision than the goal (one head per encoder layer, probabilities averaged); on
NER it ranks at chance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from annotune.core.errors import AnnotuneError
from annotune.core.events import Emit, FoldStarted, Progress
from annotune.core.features import batch_end, collate, pad_id
from annotune.core.label_check import frozen_check_supports
from annotune.core.tasks import Annotation, ExampleFields, LabelIssue, Task, TaskSettings
from annotune.core.training.data import to_device
from annotune.core.training.device import choose_device
from annotune.core.training.loop import Cancelled
from annotune.core.training.model import load_model, model_inputs

# A linear head fitted by L-BFGS on the whole fold, with an L2 penalty on its weights: on
# 2,000 noisy SST-2 sentences (bench/label_errors.py, cached encoder states) a penalty of 0.3
# ranked the flipped labels best (precision@k 0.54 against 0.43 for AdamW at 1e-2 decay;
# 0.1: 0.49, 1.0: 0.52, 3.0: 0.49): a weak penalty fits the noisy labels of the other folds.
HEAD_L2 = 0.3
HEAD_ITERATIONS = 100
IGNORE_INDEX = -100


def out_of_fold(task: Task, settings: TaskSettings, config: Any,
                items: Sequence[tuple[int, ExampleFields, Annotation]], assignment: Sequence[int],
                folds: int, emit: Emit, should_stop: Callable[[], bool] | None = None
                ) -> list[tuple[int, LabelIssue]]:
    """Return (item index, issue) for every item, each scored by a head that never saw it."""
    if not frozen_check_supports(task):
        raise AnnotuneError(f"the frozen-encoder label check cannot score {task.title}",
                            hint="check without --freeze-encoder (fine-tuned folds)")
    should_stop = should_stop or (lambda: False)
    if config.max_length is not None:
        settings = settings.with_(max_length=int(config.max_length))
    torch.manual_seed(config.seed)
    device = choose_device(config)
    loaded = load_model(task, settings, config.base_model)
    fields = [dict(f) for _, f, _ in items]
    annotations = [a for _, _, a in items]
    features = task.encode(loaded.tokenizer, fields, annotations, settings)
    states = _encoder_states(loaded.model, task, features, pad_id(loaded.tokenizer), device,
                             config.eval_batch_size, emit, should_stop)
    results: list[tuple[int, LabelIssue]] = []
    for fold in range(folds):
        if should_stop():
            raise Cancelled()
        held = [i for i, f in enumerate(assignment) if f == fold]
        emit(FoldStarted(event="fold", fold=fold + 1, folds=folds,
                         train_examples=len(items) - len(held), held_out=len(held)))
        held_set = set(held)
        train_rows = [j for j, feature in enumerate(features)
                      if feature.example_index not in held_set]
        head = _fit_heads(task, settings, [states[j] for j in train_rows],
                          [features[j].target for j in train_rows], config.seed + fold)
        position = {index: n for n, index in enumerate(held)}
        held_rows = [j for j, feature in enumerate(features) if feature.example_index in held_set]
        held_features = [replace(features[j], example_index=position[features[j].example_index])
                         for j in held_rows]
        with torch.no_grad():
            outputs = [{"logits": head(torch.from_numpy(states[j])).numpy()} for j in held_rows]
        issues = task.label_issues([fields[i] for i in held], [annotations[i] for i in held],
                                   held_features, outputs, settings)
        results.extend(zip(held, issues, strict=True))
    return results


@torch.inference_mode()
def _encoder_states(model: torch.nn.Module, task: Task, features: Sequence[Any], pad: int,
                    device: torch.device, batch_size: int, emit: Emit,
                    should_stop: Callable[[], bool]) -> list[np.ndarray]:
    """Run the frozen encoder once: per feature each layer's mean token state, or every token's.

    Classification keeps one mean-pooled state per encoder layer (an array of layers ×
    hidden): each layer gets its own head and their probabilities are averaged (``_fit_heads``).
    A token's state (NER) is the mean over the encoder's layers: with the L2 head the layer
    mean ranked SST-2's flipped labels better than the last layer alone (precision@k 0.54
    against 0.49), and the heads per layer better again (docs/benchmarks.md).
    """
    encoder = getattr(model, "base_model", model).to(device).eval()
    accepted = model_inputs(encoder)
    order = sorted(range(len(features)), key=lambda i: len(features[i]))
    lengths = [len(features[i]) for i in order]
    states: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(features)
    started, start = time.perf_counter(), 0
    while start < len(order):
        if should_stop():
            raise Cancelled()
        indices = order[start:batch_end(lengths, start, batch_size)]
        batch = [features[i] for i in indices]
        inputs = to_device(collate(batch, pad, task, with_targets=False), device, accepted)
        layers = torch.stack(encoder(**inputs, output_hidden_states=True).hidden_states[1:])
        if task.sequence_outputs:
            hidden = layers.float().mean(0)
            rows = [hidden[n, :len(f)].cpu().numpy() for n, f in enumerate(batch)]
        else:  # (layers, batch, tokens, hidden) -> per example (layers, hidden)
            mask = inputs["attention_mask"].unsqueeze(-1).float()
            pooled = (layers.float() * mask).sum(2) / mask.sum(1).clamp(min=1.0)
            rows = list(pooled.transpose(0, 1).cpu().numpy())
        for i, row in zip(indices, rows, strict=True):
            states[i] = row
        start += len(indices)
        elapsed = time.perf_counter() - started
        emit(Progress(event="progress", step=start, total_steps=len(order), epoch=0,
                      eta_s=round(elapsed / start * (len(order) - start), 1)))
    return states


def _fit_heads(task: Task, settings: TaskSettings, states: Sequence[np.ndarray],
               targets: Sequence[Any], seed: int) -> torch.nn.Module:
    """Fit the fold's model: NER one per-token head; classification one head per layer.

    The layers see a sentence differently (the lower ones closer to its words, the upper
    ones to its meaning); averaging their heads' probabilities ranked planted label errors
    better than one head on the layers' mean, on each of three plantings (docs/benchmarks.md).
    """
    if task.sequence_outputs:
        return _fit_head(task, settings, states, targets, seed)
    heads = [_fit_head(task, settings, [state[view] for state in states], targets, seed)
             for view in range(states[0].shape[0])]
    multi = np.asarray(targets[0]).dtype.kind == "f"
    return _AveragedHeads(heads, multi)


def _fit_head(task: Task, settings: TaskSettings, states: Sequence[np.ndarray],
              targets: Sequence[Any], seed: int) -> torch.nn.Module:
    """Fit a linear head on encoder states (full batch): softmax, sigmoid or per-token."""
    torch.manual_seed(seed)
    if task.sequence_outputs:  # one row per token; untrained pieces (-100) are left out
        x = np.concatenate(states)
        y = np.concatenate([np.asarray(t, dtype=np.int64) for t in targets])
        keep = y != IGNORE_INDEX
        x, y = x[keep], y[keep]
    else:
        x = np.stack(states)
        y = np.stack([np.asarray(t) for t in targets])
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    # standardised inputs: one penalty suits every encoder's scale
    mean, std = inputs.mean(0), inputs.std(0).clamp(min=1e-6)
    multi = y.dtype.kind == "f"
    outputs = y.shape[1] if multi else int(max(int(y.max()) + 1, _classes(task, settings)))
    linear = torch.nn.Linear(inputs.shape[1], outputs)
    target = torch.from_numpy(y.astype(np.float32 if multi else np.int64))
    loss_fn = torch.nn.BCEWithLogitsLoss() if multi else torch.nn.CrossEntropyLoss()
    scaled = (inputs - mean) / std
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=HEAD_ITERATIONS,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(linear(scaled), target) + HEAD_L2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return torch.nn.Sequential(_Standardise(mean, std), linear).eval()


def _classes(task: Task, settings: TaskSettings) -> int:
    """Return the model's output width (labels; NER: its tag set)."""
    width = task.model_kwargs(settings).get("num_labels", len(settings.labels))
    if not isinstance(width, int):
        raise TypeError(f"{task.name}.model_kwargs gave num_labels={width!r}, not a whole number")
    return width


class _Standardise(torch.nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class _AveragedHeads(torch.nn.Module):
    """One head per view (an encoder layer): the average of their probabilities, as logits.

    Averaging probabilities, not logits, keeps one overconfident layer from outvoting the
    others; the result goes back to logits (log p for softmax, log-odds for sigmoid) because
    the task's decode applies its own softmax or sigmoid.
    """

    def __init__(self, heads: Sequence[torch.nn.Module], multi: bool):
        super().__init__()
        self.heads = torch.nn.ModuleList(heads)
        self.multi = multi

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([head(views[n]) for n, head in enumerate(self.heads)])
        if self.multi:
            p = torch.sigmoid(logits).mean(0).clamp(1e-7, 1 - 1e-7)
            return torch.log(p) - torch.log1p(-p)
        return torch.log(torch.softmax(logits, -1).mean(0).clamp(min=1e-12))
