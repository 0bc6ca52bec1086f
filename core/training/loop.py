"""The one training loop: labeled examples in, the best checkpoint and run.json out.

Read ``train`` top to bottom: set up (validation split, seeds, device, model, features,
batch sizes, precision, optimizer), then for each epoch: training steps (step.py, progress
events from progress.py), an evaluation that reuses the numpy post-processing of the
Predictor (evaluation.py: Task.decode + Task.metrics), best-checkpoint keeping and early
stopping (keeping.py, selection.py); last, the run's record. A step or an evaluation batch
that runs out of GPU memory is redone in halves (core/training/memory.py). Under torchrun or
accelerate launch the same loop runs in every process; what differs (DDP, each process's
share of a batch, gathered evaluation) is asked of ``ranks`` (core/training/distributed.py).
"""

from __future__ import annotations

import importlib.metadata
import math
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from annotune.core.errors import AnnotuneError
from annotune.core.events import Emit, Metrics, PrecisionChosen
from annotune.core.features import batch_end, collate, pad_id, split_outputs
from annotune.core.long_texts import window_counts
from annotune.core.run_record import RunRecord
from annotune.core.tasks import Feature, Task, TaskSettings
from annotune.core.training.config import TrainConfig
from annotune.core.training.data import Item, bucketed_batches, settle_validation, to_device
from annotune.core.training.device import (
    autocast_dtype,
    choose_device,
    describe_device,
    measures_precision,
    pick_precision,
)
from annotune.core.training.distributed import Ranks, is_main_process
from annotune.core.training.evaluation import Validation, score_epoch
from annotune.core.training.keeping import BestEpoch
from annotune.core.training.memory import (
    OUT_OF_MEMORY,
    BatchSizes,
    peak_gpu_memory_gb,
    reset_peak,
    retry_on_oom,
)
from annotune.core.training.model import BUNDLED_NAME, freeze_encoder, load_model, model_inputs
from annotune.core.training.optimization import build_optimization
from annotune.core.training.pooling import fit_head
from annotune.core.training.precision import choose_precision, probe_message
from annotune.core.training.progress import ProgressReport
from annotune.core.training.selection import Candidate, EpochChoice, resamples
from annotune.core.training.step import TrainingStep, batch_inputs
from annotune.core.training.validation_file import write_validation

SAMPLES = 32  # validation examples copied into run.json for the export parity check


class Cancelled(Exception):
    """Raised inside the loop when ``should_stop`` says so; ``train`` turns it into a status."""


@dataclass
class TrainResult:
    """What a run produced; ``artifact_dir`` is None when no epoch finished before a stop."""

    status: str  # "finished" | "cancelled"
    out_dir: Path
    artifact_dir: Path | None
    best_epoch: int | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    device: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    settings: TaskSettings | None = None  # as trained (max length, tuned thresholds)


def train(task: Task, settings: TaskSettings, config: TrainConfig, train_data: Sequence[Item],
          val_data: Sequence[Item] | None, out_dir: str | Path, emit: Emit | None = None,
          should_stop: Callable[[], bool] | None = None, progress_interval: float = 0.5,
          ranks: Ranks | None = None,
          split_record: Mapping[str, Any] | None = None) -> TrainResult:
    """Fine-tune ``config.base_model`` for ``task`` and keep the best epoch in ``out_dir/model``.

    ``train_data`` and ``val_data`` are lists of (fields, annotation); an empty ``val_data``
    means: hold out a stratified ``config.validation_fraction`` of ``train_data``, similar
    texts together (``split_record``: how a caller that split already chose it). ``emit``
    receives progress and metrics events; ``should_stop`` is polled every step. ``ranks``:
    the processes of a distributed launch (distributed.start); only rank 0 writes files.
    """
    started = time.perf_counter()
    emit = emit or (lambda event: None)
    ranks = ranks or Ranks()
    should_stop = ranks.agreed(should_stop or (lambda: False))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings, split = _settle_split(task, settings, config, train_data, val_data, split_record)

    # -- set up: seeds before the model is built, because the new head is initialised randomly
    _seed(config.seed)
    device, device_info = _set_up_device(config, ranks)
    loaded = load_model(task, settings, config.base_model)
    model = loaded.model.to(device)
    if config.freeze_encoder:
        freeze_encoder(model)
    measured = _precision_before_probe(model, config, device, ranks, device_info)
    features, validation, long_texts = _encode(task, loaded.tokenizer, split, settings)
    if ranks.is_main:  # the whole validation split beside the checkpoint: exports score on it
        write_validation(out_dir, validation.fields, validation.annotations)
    # halved (gradient accumulation doubled) when the GPU runs out of memory
    sizes = BatchSizes(config.batch_size, config.micro_batch_size, config.eval_batch_size,
                       settings.max_length, emit)
    pad_token_id, accepted = pad_id(loaded.tokenizer), model_inputs(model)
    inputs_for = batch_inputs(features, pad_token_id, task, device, accepted)
    lengths = [len(f) for f in features]
    if measured:
        _measure_precision(model, config, lengths, inputs_for, sizes, device, ranks,
                           device_info, emit)
    precision = device_info["precision"]
    # a pooled head starts fitted on the frozen embeddings (core/training/pooling.py)
    fit_head(model, bucketed_batches(lengths, config.batch_size, config.seed, 0), inputs_for)
    steps_per_epoch = math.ceil(len(features) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimization = build_optimization(model, config, device, total_steps, precision)
    train_step = TrainingStep(_maybe_compile(ranks.wrap(model), config),
                              autocast_dtype(precision), inputs_for, optimization, sizes, ranks,
                              ranks.step_retry(retry_on_oom), device)
    evaluate = ranks.evaluation(predict)
    # the same bootstrap resamples every epoch: scores are compared on paired draws
    draw_plan = resamples(len(validation.fields), config.seed)
    best = BestEpoch(EpochChoice(draw_plan.scale), settings,
                     partial(_save, model, loaded.hf_tokenizer, out_dir / "model"))
    history: list[dict[str, Any]] = []
    report = ProgressReport(emit, device, total_steps, progress_interval)
    status, steps = "finished", 0

    # -- epochs: training steps, then an evaluation and a checkpoint decision
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            epoch_start = time.perf_counter()
            epoch_loss = torch.zeros((), device=device)
            for batch in bucketed_batches(lengths, config.batch_size, config.seed, epoch):
                if should_stop():
                    raise Cancelled()
                loss = train_step(batch)
                epoch_loss += loss
                steps += 1
                report.after_step(steps, epoch, loss, len(batch), optimization.learning_rate)

            # in fp32 whatever the training precision, so the recorded score is the one the
            # fp32 bundle reproduces (bf16 evaluation moved SST-2 F1 by half a point)
            outputs, val_loss = evaluate(model, task, validation.features, pad_token_id, device,
                                         None, sizes, accepted, should_stop, with_loss=True)
            scored = score_epoch(task, validation, outputs, settings, draw_plan, should_stop)
            if should_stop():
                raise Cancelled()
            history.append(_epoch_entry(epoch, epoch_loss.item() / steps_per_epoch, val_loss,
                                        scored.metrics, epoch_start, device))
            entry = history[-1]
            emit(Metrics(event="metrics", epoch=entry["epoch"], train_loss=entry["train_loss"],
                         validation_loss=entry["validation_loss"], metrics=entry["metrics"],
                         peak_gpu_memory_gb=entry["peak_gpu_memory_gb"],
                         main_metric=task.main_metric))
            kept, why = best.consider(Candidate(epoch, scored.score, val_loss, scored.draws),
                                      scored.metrics, scored.settings)
            history[-1].update(kept=kept, why=why)
            if best.patience_spent(epoch, config.early_stopping_patience):
                break
    except Cancelled:
        status = "cancelled"
    except OUT_OF_MEMORY as error:  # outside a forward/backward pass: nothing to halve
        raise AnnotuneError(
            f"the GPU ran out of memory outside a training step (optimizer step or checkpoint) "
            f"with {sizes.micro_batch_size} examples per step and max length "
            f"{settings.max_length}", hint="choose a smaller base model, or train on the CPU"
        ) from error

    duration = round(time.perf_counter() - started, 2)
    if ranks.is_main:
        _write_record(out_dir, task=task, status=status, best=best, config=config,
                      loaded=loaded, history=history, device_info=device_info,
                      memory=sizes.record(device), duration=duration, steps=steps, split=split,
                      long_texts=long_texts, samples=validation.fields[:SAMPLES])
    return TrainResult(status=status, out_dir=out_dir,
                       artifact_dir=out_dir / "model" if best.epoch is not None else None,
                       best_epoch=best.epoch, metrics=best.metrics, history=history,
                       device=device_info, duration_s=duration, settings=best.settings)


def _settle_split(task: Task, settings: TaskSettings, config: TrainConfig,
                  train_data: Sequence[Item], val_data: Sequence[Item] | None,
                  split_record: Mapping[str, Any] | None) -> tuple[TaskSettings, Any]:
    """Return the settings the run trains with and its train/validation split."""
    if config.max_length is not None:
        settings = settings.with_(max_length=int(config.max_length))
    settings = settings.bound_to(task.options)  # a run.json's other tasks' keys are dropped
    task.check_settings(settings)
    split = settle_validation(train_data, val_data, task, config.validation_fraction,
                              config.seed, split_record)
    if not split.train:
        raise AnnotuneError("there are no labeled training examples",
                            hint="label some examples, or move some out of the validation split")
    return settings, split


def _seed(seed: int) -> None:
    """Seed Python, numpy and torch (the new head's weights, dropout, batch order)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _set_up_device(config: TrainConfig, ranks: Ranks) -> tuple[torch.device, dict[str, Any]]:
    """Choose the device (CUDA when there is one) and start counting its peak memory there."""
    device = ranks.place(choose_device(config))
    device_info = {**describe_device(config), **ranks.describe()}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores
        torch.backends.cudnn.allow_tf32 = True
    reset_peak(device)
    return device, device_info


def _precision_before_probe(model: torch.nn.Module, config: TrainConfig, device: torch.device,
                            ranks: Ranks, device_info: dict[str, Any]) -> bool:
    """Note the requested precision in ``device_info``; return whether a probe must measure it.

    "auto" on a GPU or a CPU with bf16 instructions is measured (device.measures_precision);
    until then, and elsewhere, it is fp32 or what was asked for.
    """
    width = getattr(model.config, "hidden_size", None)
    measured = ranks.same_on_all(measures_precision(device, config.precision, width))
    device_info["precision"] = ("fp32" if measured
                                else pick_precision(device, config.precision, width))
    return measured


def _encode(task: Task, tokenizer: Any, split: Any, settings: TaskSettings
            ) -> tuple[list[Feature], Validation, dict[str, Any]]:
    """Cut both splits into windows with targets; return them and the long-text counts."""
    features = task.encode(tokenizer, [f for f, _ in split.train], [a for _, a in split.train],
                           settings)
    fields = [dict(f) for f, _ in split.validation]
    annotations = [a for _, a in split.validation]
    validation = Validation(fields, annotations,
                            task.encode(tokenizer, fields, annotations, settings))
    if not features:
        raise AnnotuneError("the training examples produced no model inputs",
                            hint="check that the labeled examples have text")
    long_texts = {"max_length": settings.max_length,
                  "train": window_counts(features, len(split.train)),
                  "validation": window_counts(validation.features, len(fields))}
    return features, validation, long_texts


def _measure_precision(model: torch.nn.Module, config: TrainConfig, lengths: Sequence[int],
                       inputs_for: Callable[..., Any], sizes: BatchSizes, device: torch.device,
                       ranks: Ranks, device_info: dict[str, Any], emit: Emit) -> None:
    """Time fp32 (TF32 on GPUs) against half precision on a long batch of this run's features.

    Half precision is kept only when clearly faster; every process trains in rank 0's choice.
    """
    precision, probe = choose_precision(
        model, lengths, bucketed_batches(lengths, config.batch_size, config.seed, 1),
        inputs_for, sizes, device)
    precision, probe = ranks.same_on_all((precision, probe))
    device_info.update(precision=precision, precision_probe=probe)
    emit(PrecisionChosen(event="precision", precision=precision, probe=probe,
                         message=probe_message(probe)))


def _epoch_entry(epoch: int, train_loss: float, val_loss: float | None, metrics: dict[str, Any],
                 epoch_start: float, device: torch.device) -> dict[str, Any]:
    """Return an epoch's line of the history (the metrics event shows the same figures)."""
    return {"epoch": epoch, "train_loss": round(train_loss, 6),
            "validation_loss": round(val_loss, 6) if val_loss is not None else None,
            "metrics": metrics, "seconds": round(time.perf_counter() - epoch_start, 2),
            "peak_gpu_memory_gb": peak_gpu_memory_gb(device)}  # None on the CPU


def _write_record(out_dir: Path, *, task: Task, status: str, best: BestEpoch,
                  config: TrainConfig, loaded: Any, history: list[dict[str, Any]],
                  device_info: dict[str, Any], memory: dict[str, Any], duration: float,
                  steps: int, split: Any, long_texts: dict[str, Any],
                  samples: list[dict[str, Any]]) -> None:
    """Write run.json beside the checkpoint: what was trained, how, and how well."""
    RunRecord(
        task=task.name, status=status, settings=best.settings.to_dict(),
        config=config.to_dict(), base_model=config.base_model or BUNDLED_NAME,
        base_model_source=loaded.source, main_metric=task.main_metric,
        best_epoch=best.epoch, metrics=best.metrics, history=history,
        device=device_info, memory=memory, duration_s=duration, steps=steps,
        train_examples=len(split.train), validation_examples=len(split.validation),
        validation_split=split.record, long_texts=long_texts,
        annotune_version=_version(), samples=samples,
    ).write(out_dir)


@torch.inference_mode()
def predict(model: torch.nn.Module, task: Task, features: Sequence[Feature], pad_token_id: int,
            device: torch.device, amp_dtype: torch.dtype | None, batch_size: int | BatchSizes,
            accepted: set[str] | None = None, should_stop: Callable[[], bool] | None = None,
            with_loss: bool = False) -> tuple[list[dict[str, np.ndarray]], float | None]:
    """Run the model over length-sorted batches; return unpadded outputs in feature order.

    With ``with_loss`` (and targets on every feature) the mean loss over the features comes
    back too; otherwise the loss is None. ``batch_size`` may be the run's BatchSizes: when
    the GPU runs out of memory, its evaluation batch is halved and the batch redone.
    """
    model.eval()
    sizes = batch_size if isinstance(batch_size, BatchSizes) else BatchSizes(
        batch_size, batch_size, batch_size)
    per_feature: list[dict[str, np.ndarray]] = [{} for _ in features]
    with_loss = with_loss and all(f.target is not None for f in features)
    order = sorted(range(len(features)), key=lambda i: len(features[i]))  # least padding
    lengths = [len(features[i]) for i in order]

    def run_batch(start: int) -> tuple[list[int], dict[str, np.ndarray], float]:
        indices = order[start:batch_end(lengths, start, sizes.eval_batch_size)]
        batch = [features[i] for i in indices]
        inputs = to_device(collate(batch, pad_token_id, task, with_targets=with_loss), device,
                           accepted)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                            enabled=amp_dtype is not None):
            output = model(**inputs)
        arrays = {name: output[name].float().cpu().numpy() for name in task.output_names}
        return indices, arrays, float(output.loss) * len(batch) if with_loss else 0.0

    loss_sum = 0.0
    start = 0
    while start < len(order):
        if should_stop is not None and should_stop():
            raise Cancelled()
        indices, arrays, loss = retry_on_oom(partial(run_batch, start), sizes, "eval",
                                             lambda: None, device)
        loss_sum += loss
        batch = [features[i] for i in indices]
        for index, piece in zip(indices, split_outputs(arrays, batch, task.sequence_outputs),
                                strict=True):
            per_feature[index] = piece
        start += len(indices)
    return per_feature, (loss_sum / len(features) if with_loss and features else None)


def _maybe_compile(model: torch.nn.Module, config: TrainConfig) -> Callable[..., Any]:
    """Return a compiled forward when asked for explicitly; "auto" does not compile.

    Measured on an H100 (all-MiniLM-L6-v2, batch 16, bf16): compiling took about 90 s and
    gave no faster steps, because a step of a model this small is bound by Python and kernel
    launches, and length-bucketed batches change shape every step. Bigger base models may
    gain; they can ask for compile=True.
    """
    if config.compile is not True:
        return model
    return torch.compile(model, dynamic=True)


def _save(model: torch.nn.Module, hf_tokenizer: Any, target: Path) -> None:
    """Write the checkpoint beside the old one, then swap, so a crash never leaves half a model."""
    if not is_main_process():  # the processes of a distributed run hold the same weights
        return
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)  # type: ignore[operator]  # a transformers PreTrainedModel
    hf_tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def _version() -> str | None:
    try:
        return importlib.metadata.version("annotune")
    except importlib.metadata.PackageNotFoundError:
        return None
