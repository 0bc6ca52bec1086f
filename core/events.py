"""Type the JSON-line events a child job writes and the CLI and the desktop follow.

Training, export, the label check and the learning curve each run in a child process that
writes one JSON object per line; its ``"event"`` key names the kind. Every kind is a
TypedDict here, so the writers (``emit``) and the readers (``read_event``, the CLI, the
desktop's watchers) agree on one shape, and mypy checks both sides. The JSON on the wire is
unchanged: a TypedDict is a plain dict at run time.

Keys every writer sends are required; keys only some writers or versions send are
``NotRequired``, so a reader uses ``.get`` for them. Each kind is ``@final`` (no event extends
another), which lets mypy tell the kinds that share an ``"event"`` apart by a key they
alone carry: ``"check_id" in event`` narrows a finished event to the label check's.

Standard library only: the Predictor-only install can import it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal, NotRequired, TypedDict, TypeGuard, final

# What a finished, failed or cancelled event ends; nothing follows one of these.
END_EVENTS = ("finished", "failed", "cancelled")


# -- shared by several jobs --------------------------------------------------------------------

@final
class Progress(TypedDict):
    """Optimizer steps done (training, each label check fold, each learning curve point)."""

    event: Literal["progress"]
    step: int
    total_steps: int
    epoch: int
    loss: NotRequired[float]
    learning_rate: NotRequired[float]
    eta_s: NotRequired[float]
    samples_per_s: NotRequired[float]
    fold: NotRequired[int]  # label check: which fold trains, of how many
    folds: NotRequired[int]
    index: NotRequired[int]  # learning curve: which point trains, of how many, at what share
    points: NotRequired[int]
    fraction: NotRequired[float]
    done: NotRequired[float]  # learning curve: share of the whole curve trained so far


@final
class Metrics(TypedDict):
    """One epoch's validation scores (training, each label check fold)."""

    event: Literal["metrics"]
    epoch: int
    metrics: dict[str, Any]  # the task's metrics: shape owned by the task plugin
    train_loss: NotRequired[float]
    validation_loss: NotRequired[float | None]
    main_metric: NotRequired[str]
    peak_gpu_memory_gb: NotRequired[float | None]
    fold: NotRequired[int]
    folds: NotRequired[int]


@final
class Failed(TypedDict):
    """The job ended with an error; ``log`` names a traceback file for unexpected ones."""

    event: Literal["failed"]
    error: str
    run_id: NotRequired[int | None]
    log: NotRequired[str | None]
    busy: NotRequired[bool]  # another training of the project holds it: nothing started
    run_dir: NotRequired[str]
    artifact_dir: NotRequired[str | None]
    metrics: NotRequired[dict[str, Any] | None]
    best_epoch: NotRequired[int | None]
    duration_s: NotRequired[float | None]
    recorded_in: NotRequired[str]
    record_command: NotRequired[str]


@final
class Cancelled(TypedDict):
    """The job stopped on request; ``forced``: the parent killed it and recorded the end."""

    event: Literal["cancelled"]
    run_id: NotRequired[int | None]
    artifact_dir: NotRequired[str | None]
    forced: NotRequired[bool]
    check_id: NotRequired[int]
    run_dir: NotRequired[str]
    metrics: NotRequired[dict[str, Any] | None]
    best_epoch: NotRequired[int | None]
    duration_s: NotRequired[float | None]
    recorded_in: NotRequired[str]
    record_command: NotRequired[str]


@final
class LogLine(TypedDict):
    """A line of the child's stdout that was not JSON (a library's own print)."""

    event: Literal["log"]
    line: str


# -- training ----------------------------------------------------------------------------------

@final
class TrainingStarted(TypedDict):
    """A run exists: its id (None for a prepared run folder), device and data."""

    event: Literal["started"]
    run_id: int | None
    device: dict[str, Any]  # describe_device: name, kind, precision, …
    device_label: str
    run_dir: str
    task: str
    base_model: str | None
    train_examples: int
    validation_examples: int
    long_texts: NotRequired[dict[str, Any] | None]  # None without a local tokenizer
    processes: NotRequired[int]  # a run trained by several processes


@final
class PrecisionChosen(TypedDict):
    """The precision the run trains in and the probe that measured it."""

    event: Literal["precision"]
    precision: str
    probe: dict[str, Any] | None
    message: str | None
    fold: NotRequired[int]  # label check: the fold whose training measured it
    folds: NotRequired[int]


@final
class MemoryReduced(TypedDict):
    """The GPU ran out of memory: the run goes on with smaller micro-batches."""

    event: Literal["memory"]
    phase: str
    micro_batch_size: int
    gradient_accumulation: int
    eval_batch_size: int
    message: str
    fold: NotRequired[int]  # label check: the fold whose training ran out of memory
    folds: NotRequired[int]


@final
class TrainingFinished(TypedDict):
    """The run ended with its best epoch kept (``artifact_dir``: its checkpoint)."""

    event: Literal["finished"]
    run_id: int | None
    artifact_dir: str | None
    run_dir: str
    metrics: dict[str, Any] | None
    best_epoch: int | None
    duration_s: float | None
    recorded_in: NotRequired[str]
    record_command: NotRequired[str]


TrainingEvent = (TrainingStarted | Progress | PrecisionChosen | MemoryReduced | Metrics
                 | TrainingFinished | Failed | Cancelled | LogLine)


# -- label check -------------------------------------------------------------------------------

@final
class LabelCheckStarted(TypedDict):
    """A label check of ``examples`` annotations in ``folds`` folds began."""

    event: Literal["started"]
    check_id: int
    examples: int
    folds: int
    device_label: str


@final
class FoldStarted(TypedDict):
    """One fold trains on the others and scores its held-out examples."""

    event: Literal["fold"]
    fold: int
    folds: int
    train_examples: int
    held_out: int
    elapsed_s: NotRequired[float]


@final
class LabelCheckFinished(TypedDict):
    """The check ended; ``suspects``: issues scored 0.5 or more."""

    event: Literal["finished"]
    check_id: int
    issues: int
    suspects: int


LabelCheckEvent = (LabelCheckStarted | FoldStarted | Progress | Metrics | LabelCheckFinished
                   | Failed | Cancelled | LogLine)


# -- learning curve ----------------------------------------------------------------------------

@final
class CurveStarted(TypedDict):
    """The curve of run ``source_run`` trains at ``fractions`` of its labels."""

    event: Literal["started"]
    source_run: int
    fractions: list[float]
    labels: list[int]
    validation_examples: int
    device_label: str


@final
class PointStarted(TypedDict):
    """One point of the curve starts training."""

    event: Literal["point_started"]
    index: int
    points: int
    fraction: float
    labels: int


@final
class Point(TypedDict):
    """One point of the curve: its score and the score's 95 % interval."""

    event: Literal["point"]
    index: int
    points: int
    fraction: float
    labels: int
    score: float
    low: float | None  # None when no resample of the point scored (a metric left undefined)
    high: float | None
    best_epoch: NotRequired[int | None]
    seconds: NotRequired[float]


@final
class CurveFinished(TypedDict):
    """The curve, as stored in ``path`` (learning_curve.json)."""

    event: Literal["finished"]
    source_run: int
    curve: dict[str, Any]
    path: str


LearningCurveEvent = (CurveStarted | PointStarted | Progress | Point | CurveFinished | Failed
                      | Cancelled | LogLine)


# -- export ------------------------------------------------------------------------------------

@final
class ExportStage(TypedDict):
    """The export moved on to another stage (tracing, checking, quantizing, …)."""

    event: Literal["stage"]
    stage: str


@final
class ExportFinished(TypedDict):
    """The bundle is written; ``report`` is ExportReport.to_dict()."""

    event: Literal["finished"]
    report: dict[str, Any]


ExportEvent = ExportStage | ExportFinished | Failed | LogLine

Event = TrainingEvent | LabelCheckEvent | LearningCurveEvent | ExportEvent
# What every job's writer is handed: a writer builds each event as its TypedDict above, so
# mypy checks the keys and the kinds of their values where the event is made
Emit = Callable[[Event], None]
# How a training run ends, as the job that ran it says
RunEnd = TrainingFinished | Failed | Cancelled
# How any job ends: nothing follows one of these
JobEnd = TrainingFinished | LabelCheckFinished | CurveFinished | ExportFinished | Failed | Cancelled

KINDS = frozenset({"started", "progress", "precision", "memory", "metrics", "finished", "failed",
                   "cancelled", "log", "fold", "point_started", "point", "stage"})


def read_event(line: str) -> Event | None:
    """Parse one line of a child's stdout into an event; None for a blank line.

    A line that is not a JSON object with a known ``"event"`` (a library printing to stdout)
    comes back as a ``log`` event carrying the line, so nothing a child says is lost.
    """
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("event") in KINDS:
        event: Event = data  # type: ignore[assignment]  # checked: a dict with a known kind
        return event
    return LogLine(event="log", line=line)


def is_end(event: Event) -> TypeGuard[JobEnd]:
    """Say whether an event ends its job (finished, failed or cancelled)."""
    return event["event"] in END_EVENTS
