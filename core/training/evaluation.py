"""Score an epoch on validation: the numpy decode and metrics the exported model is judged by."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotune.core.errors import AnnotuneError
from annotune.core.tasks import Annotation, Feature, Task, TaskSettings
from annotune.core.training.selection import Resamples, bootstrap, uncertainty


@dataclass
class Validation:
    """The validation split as the loop uses it: fields, annotations and encoded features."""

    fields: list[dict[str, Any]]
    annotations: list[Annotation]
    features: list[Feature]


@dataclass
class EpochScore:
    """An epoch's metrics (with the main metric's uncertainty), score and bootstrap draws."""

    settings: TaskSettings  # with what the task tuned on validation (multi-label thresholds)
    metrics: dict[str, Any]
    score: float
    draws: np.ndarray


def score_epoch(task: Task, validation: Validation, outputs: Sequence[Mapping[str, np.ndarray]],
                settings: TaskSettings, draw_plan: Resamples,
                should_stop: Callable[[], bool]) -> EpochScore:
    """Decode the model's validation outputs and score them, with bootstrap draws."""
    predictions = task.decode(validation.fields, validation.features, outputs, settings)
    # what the task fits on validation (multi-label thresholds) travels with the checkpoint
    # (run.json settings), so export and inference decide the same
    tuned = task.tune_settings(predictions, validation.annotations, settings)
    if tuned != settings:
        predictions = task.decode(validation.fields, validation.features, outputs, tuned)
    metrics = jsonable(task.metrics(predictions, validation.annotations, tuned))
    if task.main_metric not in metrics:
        raise AnnotuneError(f"task '{task.name}' reported no '{task.main_metric}' metric",
                            hint="the task plugin's metrics() must include its main metric")
    score = float(metrics[task.main_metric])
    draws = bootstrap(task, task.main_metric, predictions, validation.annotations, tuned,
                      draw_plan, should_stop)
    metrics["uncertainty"] = uncertainty(task.main_metric, score, draws, draw_plan,
                                        scale=task.metric_scale)
    return EpochScore(tuned, metrics, score, draws)


def jsonable(value: Any) -> Any:
    """Turn numpy scalars and arrays inside metrics into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
