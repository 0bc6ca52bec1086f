"""The one training loop: labeled examples in, the best checkpoint and run.json out.

Read ``train`` top to bottom: seeds, device, model, features, batch sizes, precision (timed
on the run's own batches for "auto" on a GPU or a CPU with bf16 instructions), optimizer,
then epochs of training steps, each epoch followed by an evaluation that reuses the numpy
post-processing of the Predictor (Task.decode + Task.metrics), best-checkpoint keeping and
early stopping. A step or an evaluation batch that runs out of GPU memory is redone in
halves (core/training/memory.py). Under torchrun or accelerate launch the same loop runs in
every process; what differs (DDP, each process's share of a batch, gathered evaluation) is
asked of ``ranks`` (core/training/distributed.py).
"""

from __future__ import annotations

import importlib.metadata
import json
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
from annotune.core.features import batch_end, collate, pad_id, split_outputs
from annotune.core.long_texts import window_counts
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
from annotune.core.training.memory import (
    OUT_OF_MEMORY,
    BatchSizes,
    peak_gpu_memory_gb,
    reset_peak,
    retry_on_oom,
)
from annotune.core.training.model import BUNDLED_NAME, freeze_encoder, load_model, model_inputs
from annotune.core.training.pooling import fit_head
from annotune.core.training.precision import choose_precision, probe_message
from annotune.core.training.selection import (
    Candidate,
    EpochChoice,
    bootstrap,
    resamples,
    uncertainty,
)
from annotune.core.validation import write_validation

Emit = Callable[[dict[str, Any]], None]
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
    if config.max_length is not None:
        settings = settings.with_(max_length=int(config.max_length))
    task.check_settings(settings)
    split = settle_validation(train_data, val_data, task, config.validation_fraction,
                              config.seed, split_record)
    train_data, val_data = split.train, split.validation
    if not train_data:
        raise AnnotuneError("there are no labeled training examples",
                            hint="label some examples, or move some out of the validation split")

    # -- seeds: before the model is built, because the new head is initialised randomly
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    # -- device: CUDA when there is one; its peak memory is counted from here. The precision
    #    is the requested one, or measured below for "auto" on a GPU or a CPU with bf16
    #    instructions (device.measures_precision); fp32 elsewhere.
    device = ranks.place(choose_device(config))
    device_info = {**describe_device(config), **ranks.describe()}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores
        torch.backends.cudnn.allow_tf32 = True
    reset_peak(device)

    # -- model and tokenizer
    loaded = load_model(task, settings, config.base_model)
    model = loaded.model.to(device)
    if config.freeze_encoder:
        freeze_encoder(model)
    accepted = model_inputs(model)
    pad_token_id = pad_id(loaded.tokenizer)
    width = getattr(model.config, "hidden_size", None)
    measured = ranks.same_on_all(measures_precision(device, config.precision, width))
    precision = "fp32" if measured else pick_precision(device, config.precision, width)
    device_info["precision"] = precision  # the probe below may still change it

    # -- features: the task cuts examples into windows and attaches targets
    train_features = task.encode(loaded.tokenizer, [f for f, _ in train_data],
                                 [a for _, a in train_data], settings)
    val_fields = [dict(f) for f, _ in val_data]
    val_annotations = [a for _, a in val_data]
    val_features = task.encode(loaded.tokenizer, val_fields, val_annotations, settings)
    if not train_features:
        raise AnnotuneError("the training examples produced no model inputs",
                            hint="check that the labeled examples have text")
    lengths = [len(f) for f in train_features]
    long_texts = {"max_length": settings.max_length,
                  "train": window_counts(train_features, len(train_data)),
                  "validation": window_counts(val_features, len(val_data))}
    # the whole validation split beside the checkpoint: the export scores its bundles on it
    if ranks.is_main:
        write_validation(out_dir, val_fields, val_annotations)

    # -- batch sizes: halved (gradient accumulation doubled) when the GPU runs out of memory
    sizes = BatchSizes(config.batch_size, config.micro_batch_size, config.eval_batch_size,
                       settings.max_length, emit)

    def inputs_for(piece: Sequence[int]) -> dict[str, torch.Tensor]:
        arrays = collate([train_features[i] for i in piece], pad_token_id, task,
                         with_targets=True)
        return to_device(arrays, device, accepted)

    # -- precision: time fp32 (TF32 on GPUs) against half precision on a long batch of this
    #    run's own features, and keep fp32 unless half precision is clearly faster
    if measured:
        precision, probe = choose_precision(
            model, lengths, bucketed_batches(lengths, config.batch_size, config.seed, 1),
            inputs_for, sizes, device)
        precision, probe = ranks.same_on_all((precision, probe))  # rank 0's measurement
        device_info.update(precision=precision, precision_probe=probe)
        emit({"event": "precision", "precision": precision, "probe": probe,
              "message": probe_message(probe)})
    amp_dtype = autocast_dtype(precision)
    # a pooled head starts fitted on the frozen embeddings (core/training/pooling.py)
    fit_head(model, bucketed_batches(lengths, config.batch_size, config.seed, 0), inputs_for)

    # -- optimizer: AdamW without decay on biases and norms, linear warmup then linear decay
    steps_per_epoch = math.ceil(len(train_features) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(total_steps * config.warmup_ratio)
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if p.ndim >= 2],
               "weight_decay": config.weight_decay},
              {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config.learning_rate,
                                  # one kernel for all tensors: on the CPU too (measured 14
                                  # against 104 ms a step for all-MiniLM-L6-v2's weights)
                                  fused=device.type in ("cuda", "cpu"))

    def rate(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    forward = _maybe_compile(ranks.wrap(model), config)
    retry_step, evaluate = ranks.step_retry(retry_on_oom), ranks.evaluation(predict)

    def run_model(inputs: Mapping[str, torch.Tensor]) -> Any:
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                            enabled=amp_dtype is not None):
            return forward(**inputs)

    def accumulate(batch: Sequence[int]) -> torch.Tensor:
        """Run forward and backward over ``batch`` in micro-batches; return its loss."""
        # micro-batches weighted by their share of the batch, so the summed gradient equals
        # that of the whole batch at once, whatever the micro-batch size (and however many
        # processes share the batch: each runs its own part, ranks.share)
        total = torch.zeros((), device=device)
        mine, weight = ranks.share(batch)
        for start in range(0, len(mine), sizes.micro_batch_size):
            piece = mine[start:start + sizes.micro_batch_size]
            with ranks.syncing(last=start + sizes.micro_batch_size >= len(mine)):
                loss = run_model(inputs_for(piece)).loss
                loss = loss.float() * (len(piece) / len(batch) * weight)
                scaler.scale(loss).backward()
            total += loss.detach()
        return ranks.mean(total)

    # -- training: epochs of optimizer steps, each an evaluation and a checkpoint decision
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": None, "metrics": {}, "settings": settings}
    # the same bootstrap resamples every epoch: scores are compared on paired draws
    draw_plan = resamples(len(val_data), config.seed)
    choice = EpochChoice(draw_plan.scale)
    artifact_dir = out_dir / "model"
    status = "finished"
    step = 0
    loop_start = last_report = time.perf_counter()
    window_loss, window_steps, window_samples = torch.zeros((), device=device), 0, 0
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            epoch_start = time.perf_counter()
            epoch_loss = torch.zeros((), device=device)
            for batch in bucketed_batches(lengths, config.batch_size, config.seed, epoch):
                if should_stop():
                    raise Cancelled()
                # out of memory: the partial gradients are dropped and the same step is
                # redone in smaller micro-batches, so the optimizer steps once per batch
                loss = retry_step(partial(accumulate, batch), sizes, "train",
                                  lambda: optimizer.zero_grad(set_to_none=True), device)
                epoch_loss += loss
                window_loss += loss
                if config.max_grad_norm:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                window_steps += 1
                window_samples += len(batch)

                # progress: throttled, because reading the loss waits for the GPU
                now = time.perf_counter()
                if now - last_report >= progress_interval or step == total_steps or step == 1:
                    emit({"event": "progress", "step": step, "total_steps": total_steps,
                          "epoch": epoch, "loss": round(window_loss.item() / window_steps, 6),
                          "learning_rate": scheduler.get_last_lr()[0],
                          "eta_s": round((now - loop_start) / step * (total_steps - step), 1),
                          "samples_per_s": round(window_samples / max(now - last_report, 1e-9),
                                                 1)})
                    last_report = now
                    window_loss, window_steps, window_samples = torch.zeros((), device=device), 0, 0

            # -- evaluation: the same numpy decode + metrics the exported model is judged by,
            #    in fp32 whatever the training precision, so the recorded score is the one
            #    the fp32 bundle reproduces (bf16 evaluation moved SST-2 F1 by half a point)
            outputs, val_loss = evaluate(model, task, val_features, pad_token_id, device,
                                         None, sizes, accepted, should_stop, with_loss=True)
            predictions = task.decode(val_fields, val_features, outputs, settings)
            # what the task fits on validation (multi-label thresholds) travels with the
            # checkpoint (run.json settings), so export and inference decide the same
            epoch_settings = task.tune_settings(predictions, val_annotations, settings)
            if epoch_settings != settings:
                predictions = task.decode(val_fields, val_features, outputs, epoch_settings)
            metrics = _jsonable(task.metrics(predictions, val_annotations, epoch_settings))
            if task.main_metric not in metrics:
                raise AnnotuneError(f"task '{task.name}' reported no '{task.main_metric}' metric",
                                    hint="the task plugin's metrics() must include its main metric")
            score = float(metrics[task.main_metric])
            draws = bootstrap(task, task.main_metric, predictions, val_annotations,
                              epoch_settings, draw_plan, should_stop)
            if should_stop():
                raise Cancelled()
            metrics["uncertainty"] = uncertainty(task.main_metric, score, draws, draw_plan)
            train_loss = epoch_loss.item() / steps_per_epoch
            val_loss_shown = round(val_loss, 6) if val_loss is not None else None
            peak = peak_gpu_memory_gb(device)  # None on the CPU
            history.append({"epoch": epoch, "train_loss": round(train_loss, 6),
                            "validation_loss": val_loss_shown, "metrics": metrics,
                            "seconds": round(time.perf_counter() - epoch_start, 2),
                            "peak_gpu_memory_gb": peak})
            emit({"event": "metrics", "epoch": epoch, "train_loss": round(train_loss, 6),
                  "validation_loss": val_loss_shown, "metrics": metrics,
                  "main_metric": task.main_metric, "peak_gpu_memory_gb": peak})

            # -- keep the best epoch; stop when it has not improved for `patience` epochs.
            #    A later epoch wins only by more than the validation set's noise; within it
            #    the lower validation loss decides (selection.py), so the kept model is the
            #    confident one, not one a few lucky examples picked.
            kept, why = choice.consider(Candidate(epoch, score, val_loss, draws))
            history[-1].update(kept=kept, why=why)
            if kept:
                best = {"epoch": epoch, "metrics": metrics, "settings": epoch_settings}
                _save(model, loaded.hf_tokenizer, artifact_dir)
            elif (config.early_stopping_patience  # (no best yet: a NaN score counts as none)
                  and epoch - (best["epoch"] or 0) >= config.early_stopping_patience):
                break
    except Cancelled:
        status = "cancelled"
    except OUT_OF_MEMORY as error:  # outside a forward/backward pass: nothing to halve
        raise AnnotuneError(
            f"the GPU ran out of memory outside a training step (optimizer step or checkpoint) "
            f"with {sizes.micro_batch_size} examples per step and max length "
            f"{settings.max_length}", hint="choose a smaller base model, or train on the CPU"
        ) from error

    # -- record the run beside the checkpoint
    duration = round(time.perf_counter() - started, 2)
    result = TrainResult(status=status, out_dir=out_dir,
                         artifact_dir=artifact_dir if best["epoch"] is not None else None,
                         best_epoch=best["epoch"], metrics=best["metrics"], history=history,
                         device=device_info, duration_s=duration, settings=best["settings"])
    record = {
        "task": task.name, "status": status, "settings": best["settings"].to_dict(),
        "config": config.to_dict(), "base_model": config.base_model or BUNDLED_NAME,
        "base_model_source": loaded.source, "main_metric": task.main_metric,
        "best_epoch": best["epoch"], "metrics": best["metrics"], "history": history,
        "device": device_info, "memory": sizes.record(device), "duration_s": duration,
        "steps": step,
        "train_examples": len(train_data), "validation_examples": len(val_data),
        "validation_split": split.record, "long_texts": long_texts,
        "annotune_version": _version(), "samples": val_fields[:SAMPLES],
    }
    if ranks.is_main:
        (out_dir / "run.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
    return result


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
    model.save_pretrained(partial)
    hf_tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def _jsonable(value: Any) -> Any:
    """Turn numpy scalars and arrays inside metrics into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _version() -> str | None:
    try:
        return importlib.metadata.version("annotune")
    except importlib.metadata.PackageNotFoundError:
        return None
