"""Words people read for the keys the code uses: metric names, training options, CLI phrases.

Metrics and options travel as keys (``macro_f1``, ``warmup_ratio``) through run.json, the
store and ``--json`` output; every view that shows them to a person asks this module for the
title, so a key is named the same way everywhere. A task adds or overrides titles with a
``metric_titles`` mapping (as it names its fields with ``field_titles``). Unknown keys still
read as words ("per_type" → "Per type"), never as code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

METRIC_TITLES: dict[str, str] = {
    "accuracy": "Accuracy",
    "macro_f1": "Macro F1",
    "micro_f1": "Micro F1",
    "f1": "F1",
    "precision": "Precision",
    "recall": "Recall",
    "support": "Count",
    "subset_accuracy": "Exact label sets",
    "exact_match": "Exact match",
    "HasAns_exact_match": "Exact match (answerable)",
    "HasAns_f1": "F1 (answerable)",
    "HasAns_total": "Answerable questions",
    "NoAns_exact_match": "Exact match (no answer)",
    "NoAns_f1": "F1 (no answer)",
    "NoAns_total": "Questions without answer",
    "total": "Examples scored",
    "true_positives": "Entities found",
    "predicted": "Entities predicted",
    "gold": "Entities labeled",
    "loss": "Loss",
    "train_loss": "Training loss",
    "validation_loss": "Validation loss",
    "per_label": "Per label",
    "per_type": "Per entity type",
}

METRIC_DESCRIPTIONS: dict[str, str] = {
    "accuracy": "Share of examples whose predicted label is the true one",
    "macro_f1": "F1 of each label, averaged so rare labels count as much as common ones",
    "micro_f1": "F1 over every label decision together",
    "f1": "Harmonic mean of precision and recall",
    "precision": "Of the predictions made, the share that were right",
    "recall": "Of the true answers, the share that were found",
    "subset_accuracy": "Share of examples whose whole predicted label set is right",
    "exact_match": "Share of answers that match a true answer exactly",
    "loss": "What training minimises; lower is better",
    "train_loss": "Loss on the training examples; lower is better",
    "validation_loss": "Loss on the validation examples; lower is better",
}

# Metrics where a smaller figure is the better one (a change is coloured the other way).
LOWER_IS_BETTER = frozenset({"loss", "train_loss", "validation_loss"})

OPTION_TITLES: dict[str, str] = {
    "base_model": "Base model",
    "epochs": "Epochs",
    "learning_rate": "Learning rate",
    "batch_size": "Batch size",
    "gradient_accumulation": "Steps per batch",
    "warmup_ratio": "Warm-up share",
    "weight_decay": "Weight decay",
    "max_grad_norm": "Gradient clipping",
    "seed": "Random seed",
    "early_stopping_patience": "Stop after epochs without gain",
    "freeze_encoder": "Train the head only",
    "validation_fraction": "Validation share",
    "eval_batch_size": "Evaluation batch size",
    "device": "Device",
    "precision": "Precision",
    "max_length": "Maximum length (tokens)",
    "compile": "Compile the model",
    "stride": "Window overlap (tokens)",
    "labels": "Labels",
    "multi_label": "Several labels per example",
    "allow_unanswerable": "Some questions have no answer",
}

OPTION_DESCRIPTIONS: dict[str, str] = {
    "learning_rate": "How far each optimizer step moves the weights",
    "batch_size": "Examples per optimizer step",
    "gradient_accumulation": "Forward passes per optimizer step: saves memory, same result",
    "warmup_ratio": "Share of the optimizer steps over which the learning rate rises from 0",
    "weight_decay": "Pull of the weights towards zero (AdamW)",
    "max_grad_norm": "Largest gradient norm before clipping; 0 switches clipping off",
    "early_stopping_patience": "Epochs without a better validation score before training "
                               "stops; 0 never stops early",
    "freeze_encoder": "Keep the pretrained encoder fixed: fast, weaker, for tiny data",
    "validation_fraction": "Share of the labeled examples held out for validation when the "
                           "project has no validation split",
    "max_length": "Longest input in tokens; longer texts are cut into windows",
    "eval_batch_size": "Examples per forward pass when scoring the validation examples",
}

PRECISION_TITLES: dict[str, str] = {
    "fp32": "Full precision (fp32)",
    "fp32 (TF32)": "Full precision (fp32, TF32 matrix maths)",
    "bf16": "Half precision (bf16)",
    "fp16": "Half precision (fp16)",
    "auto": "Chosen by measuring",
}

STATUS_TITLES: dict[str, str] = {
    "running": "Running",
    "finished": "Finished",
    "failed": "Failed",
    "cancelled": "Stopped",
    "accepted": "Labeled",
    "skipped": "Skipped",
    "unlabeled": "Unlabeled",
}

# Command-line phrases that core errors use in their hints, and what the desktop calls them.
# Longer phrases first: "--map FIELD=COLUMN" must be replaced before "--map".
CLI_TERMS: tuple[tuple[str, str], ...] = (
    ("pass --skip-bad-rows to import the other rows",
     "tick 'Skip bad rows' to import the other rows"),
    ("(or use --skip-bad-rows)", "(or tick 'Skip bad rows')"),
    ("--skip-bad-rows", "'Skip bad rows'"),
    ("create one with `annotune init`", "create one with File ▸ New project…"),
    ("`annotune init`", "File ▸ New project…"),
    ("list runs with `annotune runs PROJECT`", "see the Runs tab"),
    ("train one with `annotune train PROJECT`", "train one on the Train tab"),
    ("(see `annotune plugins`)", "(see the installed plugins)"),
    ("export without --int8", "choose fp32 (exact) and export again"),
    ("choose one with --format", "choose one under Format"),
    ("with the matching --format", "with the matching Format"),
    ("with --format jsonl", "with Format: JSON lines"),
    ("pass --labels A,B,... when creating the project",
     "give the labels when creating the project"),
    ("name the text key with --map text=KEY", "choose the text column under Columns"),
    ("map the key with --map", "choose it under Columns"),
    ("with --map delimiter=...", "under Delimiter"),
    ("choose another format with --format", "choose another under Format"),
    ("use --format to choose another format", "choose another under Format"),
    ("or pass --force to replace it", "or choose to replace it when asked"),
    ("choose a finished run (--run ID)", "choose a finished run in the list"),
    ("pass --folds 2 or more (5 is usual)", "use 2 folds or more (5 is usual)"),
    ("label more examples, or pass fewer --folds", "label more examples"),
    ("pass fewer --folds", "label more examples"),
    # the import dialog reads quote marks CSV-style only
    ("; if the file's quote marks are plain text, read them so with --map quoting=none", ""),
)
# "use --format txt to import it as plain text" -> "choose txt under Format to import it ..."
_FORMAT_OPTION = re.compile(r"(?:use|with) --format ([\w-]+)")
_CHOOSE_COLUMN = re.compile(r"choose one with --map (\w+)=(?:COLUMN|KEY)")
_MAP_OPTION = re.compile(r"--map (\w+)=(?:COLUMN|KEY)")


def _words(key: str) -> str:
    return key.replace("_", " ").strip().capitalize() or key


def metric_title(key: str, task: Any = None) -> str:
    """Return the title of a metric key, e.g. ``Macro F1`` for ``macro_f1``."""
    titles: Mapping[str, str] = getattr(task, "metric_titles", None) or {}
    return str(titles.get(key) or METRIC_TITLES.get(key) or _words(key))


def metric_tooltip(key: str, task: Any = None) -> str:
    """Return a metric's description and its key, for a tooltip."""
    description = METRIC_DESCRIPTIONS.get(key)
    return f"{description} ({key})" if description else key


def option_title(key: str) -> str:
    """Return the title of a training option or project setting, e.g. ``Warm-up share``."""
    return OPTION_TITLES.get(key) or _words(key)


def option_tooltip(key: str) -> str:
    """Return an option's description and its key, for a tooltip."""
    description = OPTION_DESCRIPTIONS.get(key)
    return f"{description} ({key})" if description else key


def status_title(status: str | None) -> str:
    """Return the word for a run or annotation status (``cancelled`` → ``Stopped``)."""
    return STATUS_TITLES.get(status or "unlabeled") or _words(str(status))


def precision_title(precision: str | None) -> str:
    """Return e.g. ``Half precision (bf16)`` for ``bf16``."""
    return PRECISION_TITLES.get(str(precision), str(precision or ""))


def precision_sentence(probe: Mapping[str, Any] | None) -> str | None:
    """Say in words what the precision probe measured, e.g. half precision 1.48× faster.

    ``probe`` is a run's ``device.precision_probe`` (``{"fp32_ms", "bf16_ms" or "fp16_ms",
    "chosen", ...}``); None when the run did not measure.
    """
    if not probe or "fp32_ms" not in probe:
        return None
    half = "fp16" if "fp16_ms" in probe else "bf16"
    half_ms = float(probe.get(f"{half}_ms") or 0.0)
    if half_ms <= 0:
        return None
    speed = float(probe["fp32_ms"]) / half_ms
    title = precision_title(half)
    if str(probe.get("chosen")) == half:
        return f"{title} was {speed:.2f}× faster on this machine, so training used it"
    return (f"{title} was {'only ' if speed > 1 else ''}{speed:.2f}× as fast on this machine, "
            f"so training used {precision_title('fp32').lower()}")


def precision_details(probe: Mapping[str, Any] | None) -> str:
    """Return the probe's raw figures for a tooltip (milliseconds per step, batch, length)."""
    if not probe:
        return ""
    times = ", ".join(f"{key[:-3]} {float(value):.1f} ms" for key, value in probe.items()
                      if key.endswith("_ms"))
    return (f"Measured on {probe.get('batch', '?')} examples of {probe.get('length', '?')} "
            f"tokens per step: {times}")


def for_people(text: str) -> str:
    """Rewrite the command-line phrases of an error or hint into the desktop's words."""
    for cli, desktop in CLI_TERMS:
        text = text.replace(cli, desktop)
    text = _FORMAT_OPTION.sub(lambda m: f"choose '{m.group(1)}' under Format", text)
    text = _CHOOSE_COLUMN.sub(lambda m: f"choose one for '{m.group(1)}' under Columns", text)
    return _MAP_OPTION.sub(lambda m: f"the '{m.group(1)}' choice under Columns", text)
