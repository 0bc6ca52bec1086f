"""Score exported models on the run's validation data, as evaluation after training does.

The training loop writes its whole validation split beside run.json (``validation.jsonl``,
core/training/validation_file.py). Export runs the fp32 bundle and each int8 candidate over
it through the onnxruntime path of the parity check and the task's numpy ``decode`` +
``metrics`` (what evaluation and the Predictor call), so "int8 costs x points" is measured on
the data the run was judged by, with the run's main metric.

Numpy only at import; onnxruntime is imported when a model is scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotune.core.errors import AnnotuneError
from annotune.core.export.parity import prediction_agreement, run_onnx, signal_to_noise_db
from annotune.core.features import PREDICT_BATCH_SIZE
from annotune.core.long_texts import window_counts
from annotune.core.tasks import Feature, Prediction, Task, TaskSettings
from annotune.core.training.validation_file import (
    VALIDATION_FILE,
    ValidationFile,
    read_validation,
)

# Examples scored per model. The cost is a paired comparison (the same examples through fp32
# and int8), so only examples whose decision int8 changes move it: 2,000 examples resolve
# 0.05 points (one example). Scoring MiniLM on 2,000 SST-2 sentences took 18 s per model on
# two busy CPU cores (an int8 export scores three: fp32 and two candidates; 46 s in all);
# long QA contexts cost several times that. Larger splits are thinned evenly.
VALIDATION_LIMIT = 2000
# Tokens scored per model (windows included). 2,000 sentences are about 50,000 tokens; 2,000
# SQuAD questions cut into 384-token windows are over 750,000, twenty minutes of scoring on
# two cores for the three models of an int8 export. Above this budget the examples are
# thinned evenly again (about 300 such questions).
VALIDATION_TOKENS = 150_000
COST_LIMIT_POINTS = 0.5  # int8 may cost at most this many points of the main metric
SAME_SCORE = 1e-9  # identical predictions give identical metrics; JSON keeps floats exact


@dataclass
class ValidationSet(ValidationFile):
    """The validation examples an export scores, with the features and counts it adds."""

    features: list[Feature] = field(default_factory=list)
    long_texts: dict[str, int] | None = None  # window_counts of the scored examples

    @classmethod
    def read(cls, run_dir: Path, task: Task, limit: int | None = None) -> ValidationSet | None:
        """Read the run's validation file (at most ``limit`` examples, spread evenly).

        ``limit`` defaults to VALIDATION_LIMIT. None when the run kept no validation data.
        """
        found = read_validation(run_dir, task, VALIDATION_LIMIT if limit is None else limit)
        if found is None:
            return None
        return cls(path=found.path, examples=found.examples, annotations=found.annotations,
                   total=found.total)

    def encode(self, task: Task, tokenizer: Any, settings: TaskSettings,
               budget: int | None = None) -> None:
        """Make the features, thinning the examples evenly when they exceed ``budget`` tokens.

        ``budget`` defaults to VALIDATION_TOKENS.
        """
        budget = VALIDATION_TOKENS if budget is None else budget
        features = task.encode(tokenizer, self.examples, None, settings)
        tokens = sum(len(feature) for feature in features)
        if tokens > budget and len(self.examples) > 1:
            keep = max(1, len(self.examples) * budget // tokens)
            picks = [i * len(self.examples) // keep for i in range(keep)]
            self.examples = [self.examples[i] for i in picks]
            self.annotations = [self.annotations[i] for i in picks]
            features = task.encode(tokenizer, self.examples, None, settings)
        self.features = features
        self.long_texts = {"max_length": settings.max_length,
                           **window_counts(features, len(self.examples))}


@dataclass
class Scored:
    """One model's decoded validation predictions, its main metric and its raw outputs."""

    predictions: list[Prediction]
    score: float
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)  # per feature


@dataclass
class ValidationReport:
    """The main metric of the fp32 and int8 bundles on validation data, and the checkpoint's."""

    metric: str
    examples: int  # scored
    available: int  # in the run's validation file
    fp32: float
    recorded: float | None = None  # run.json "metrics"[metric]: the checkpoint, in training
    int8: float | None = None
    int8_agreement: float | None = None  # share of validation decisions int8 leaves unchanged
    scale: float = 1.0  # the task's metric_scale: 100 when the metric is a percentage
    long_texts: dict[str, int] | None = None  # ValidationSet.long_texts: windowed, truncated

    @property
    def percent(self) -> bool:
        """Whether the metric is on a 0-100 scale (SQuAD's F1) rather than 0-1 (accuracy)."""
        return self.scale == 100.0

    def points(self, difference: float) -> float:
        """Return a difference of scores in points (hundredths of a 0-1 metric)."""
        return round(difference * (1.0 if self.percent else 100.0), 4) + 0.0  # never -0.00

    def show(self, value: float) -> str:
        """Format a score with the digits that resolve a hundredth of a point."""
        return f"{value:.2f}" if self.percent else f"{value:.4f}"

    @property
    def int8_cost_points(self) -> float | None:
        """Return fp32 minus int8 in points; negative when int8 scores higher."""
        if self.int8 is None:
            return None
        return self.points(self.fp32 - self.int8)

    @property
    def matches_recorded(self) -> bool | None:
        """Whether the fp32 bundle scores what the checkpoint recorded (None: not comparable)."""
        if self.recorded is None or self.examples != self.available:
            return None
        return abs(self.fp32 - self.recorded) <= SAME_SCORE

    def to_dict(self) -> dict[str, Any]:
        return {"file": VALIDATION_FILE, "metric": self.metric, "examples": self.examples,
                "available": self.available, "fp32": self.fp32, "int8": self.int8,
                "int8_cost_points": self.int8_cost_points,
                "int8_agreement": self.int8_agreement, "cost_limit_points": COST_LIMIT_POINTS,
                "recorded": self.recorded, "fp32_matches_recorded": self.matches_recorded,
                "scale": "0-100" if self.percent else "0-1", "long_texts": self.long_texts}

    def summary(self) -> str:
        """Return e.g. ``f1 fp32 0.8443, int8 0.8418 (-0.25 points) on 1,000 examples``."""
        text = f"{self.metric} fp32 {self.show(self.fp32)}"
        if self.int8 is not None:
            change = 0.0 - (self.int8_cost_points or 0.0)
            text += f", int8 {self.show(self.int8)} ({change:+.2f} points)"
        text += f" on {self.examples:,} examples"
        if self.examples != self.available:
            text += f" (an even spread of the run's {self.available:,})"
        return text

    def recorded_summary(self) -> str | None:
        """Say how the fp32 bundle's score compares with the checkpoint's recorded one."""
        if self.recorded is None:
            return None
        if self.matches_recorded is None:
            return (f"the checkpoint recorded {self.metric} {self.show(self.recorded)} on all "
                    f"{self.available:,} validation examples (not comparable with a subset)")
        if self.matches_recorded:
            return (f"fp32 bundle equals the checkpoint's recorded {self.metric} "
                    f"{self.show(self.recorded)}")
        return (f"fp32 bundle differs from the checkpoint's recorded {self.metric} "
                f"{self.show(self.recorded)} by {self.points(self.fp32 - self.recorded):+.2f} "
                "points")

    @property
    def over_allowance(self) -> bool:
        """Whether int8 costs more than COST_LIMIT_POINTS of the main metric."""
        cost = self.int8_cost_points
        return cost is not None and cost > COST_LIMIT_POINTS

    def cost_note(self, remedy: str = "export without --int8") -> str:
        """Say what int8 costs and what keeps the score (``remedy`` as the caller's UI says it).

        The number of decisions int8 changed tells a person how much to trust the figure: on
        a small validation set one changed decision can be worth more than half a point, and
        k changed decisions that help or hurt by chance move the score by about sqrt(k)
        examples' worth.
        """
        changed = ""
        if self.int8_agreement is not None:
            count = round((1 - self.int8_agreement) * self.examples)
            changed = f"{count:,} decision{'s' if count != 1 else ''} changed, "
            if count:
                chance = math.sqrt(count) * 100.0 / max(1, self.examples)
                changed = changed[:-2] + (f": chance alone moves such a figure by about "
                                          f"±{chance:.2f}; ")
        return (f"int8 costs {self.int8_cost_points:.2f} points of {self.metric} on "
                f"{self.examples:,} validation examples ({changed}more than "
                f"{COST_LIMIT_POINTS} allowed); the fp32 bundle keeps it: {remedy}")

    def notes(self) -> list[str]:
        """Return what a user must know: int8 over its allowance, fp32 unlike the checkpoint."""
        notes = []
        if self.over_allowance:
            notes.append(self.cost_note())
        if self.matches_recorded is False and self.recorded is not None:
            notes.append(f"the fp32 bundle scores {self.metric} {self.show(self.fp32)} on "
                         f"validation, the checkpoint recorded {self.show(self.recorded)}: a "
                         "decision near a tie "
                         "can flip between PyTorch and onnxruntime (or a GPU's lower precision "
                         "in training)")
        return notes


def main_score(task: Task, metric: str, predictions: Sequence[Prediction],
               annotations: Sequence[Any], settings: TaskSettings) -> float:
    """Return ``metric`` of the task's metrics for these predictions, as training computed it."""
    metrics = task.metrics(predictions, annotations, settings)
    if metric not in metrics:
        raise AnnotuneError(f"task '{task.name}' reported no '{metric}' metric on validation",
                            hint="the task plugin's metrics() must include its main metric")
    value = metrics[metric]
    return float(value.item() if isinstance(value, np.generic) else value)


@dataclass
class ValidationScorer:
    """Score ONNX models of one run on its validation set (features encoded once)."""

    data: ValidationSet
    task: Task
    settings: TaskSettings
    metric: str
    pad_token_id: int

    def score(self, model: Path) -> Scored:
        """Run ``model`` over the validation features; decode and score like evaluation."""
        outputs, _ = run_onnx(model, self.data.features, self.pad_token_id, self.task,
                              by_length=True, batch_size=PREDICT_BATCH_SIZE)
        predictions = self.task.decode(self.data.examples, self.data.features, outputs,
                                       self.settings)
        return Scored(predictions, main_score(self.task, self.metric, predictions,
                                              self.data.annotations, self.settings), outputs)

    def compare(self, reference: Scored, candidate: Scored) -> tuple[float, float]:
        """Return the candidate's cost (reference minus candidate score) and its agreement."""
        cost = reference.score - candidate.score
        if math.isnan(cost):
            cost = math.inf  # a NaN score is the worst candidate, never the best
        return cost, prediction_agreement(reference.predictions, candidate.predictions)

    @staticmethod
    def fidelity(reference: Scored, candidate: Scored) -> float:
        """Return the candidate's signal-to-noise ratio against the reference outputs (dB)."""
        return signal_to_noise_db(reference.outputs, candidate.outputs)
