"""Train a run's learning curve, in this process or in a child process that reports JSON lines.

Child: ``python -m annotune.core.training.learning_curve_job --project PATH --run ID`` trains
the run's configuration on 25, 50, 75 and 100 % of the project's labeled training examples
(core/learning_curve.py: stratified nested subsets, the same validation examples for every
point), stores the curve beside the run (``<runs>/<id>/learning_curve.json``) and prints::

    {"event": "started", "source_run", "fractions", "labels", "validation_examples", "device_label"}
    {"event": "point_started", "index", "points", "fraction", "labels"}
    {"event": "progress", "index", "points", "fraction", "step", "total_steps", "epoch", "done"}
    {"event": "point", "index", "points", "fraction", "labels", "score", "low", "high"}
    {"event": "finished", "source_run", "curve", "path"}
    {"event": "failed", "error", "log", "busy"}      {"event": "cancelled"}

It holds the project's training lock throughout (a curve is four trainings: a training
started meanwhile is refused, and the other way round). Nothing is recorded as a run; the
points' checkpoints are deleted once scored. Stopping and parent death work as for the
training job (core/training/stopping.py, core/lifeline.py); the curve has nothing to record
on the way out, so the kernel may kill it with its parent at any time.

Parent: ``LearningCurveProcess`` (TrainingProcess's events, stop and kill, another child).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from annotune.core import learning_curve
from annotune.core.errors import AnnotuneError
from annotune.core.events import Cancelled as CancelledEvent
from annotune.core.events import (
    CurveFinished,
    CurveStarted,
    Emit,
    Event,
    Failed,
    Point,
    PointStarted,
)
from annotune.core.lifeline import child_options
from annotune.core.training.config import TrainConfig
from annotune.core.training.job_process import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_FINISHED,
    TrainingProcess,
    _refuse_when_busy,
)
from annotune.core.training.stopping import StopControl, StopRequested

WORK_FOLDER = "learning-curve.partial"  # the points' checkpoints while they are scored
PREVIEW_SAMPLES = 100  # a point's own interval, shown while the next point trains


class CurveCancelled(Exception):
    """A stop request arrived between two points or while one was scored."""


def source_run(project: Any, run_id: int | None) -> dict[str, Any]:
    """Return the finished run whose configuration the curve trains (None: the newest)."""
    finished = [run for run in project.runs() if run["status"] == "finished"]
    if run_id is None:
        if not finished:
            raise AnnotuneError("no finished training run: the learning curve retrains a "
                                "run's configuration", where=str(project.path),
                                hint="train one first (annotune train PROJECT)")
        return finished[-1]
    run = project.run(run_id)
    if run["status"] != "finished":
        raise AnnotuneError(f"run {run_id} is {run['status']}, not finished: the learning "
                            "curve retrains the configuration of a finished run",
                            where=str(project.path), hint="choose a finished run (--run ID)")
    return run


def run_config(project: Any, run: Mapping[str, Any]) -> TrainConfig:
    """Return the run's training configuration, with the project's base model by default."""
    config = TrainConfig.from_dict(run.get("config") or {})
    if config.base_model is None and project.base_model:
        config = config.with_(base_model=project.base_model)
    return config


def compute(project: Any, run_id: int | None = None, emit: Emit | None = None,
            should_stop: Callable[[], bool] | None = None,
            fractions: Sequence[float] = learning_curve.FRACTIONS,
            samples: int = learning_curve.BOOTSTRAP_SAMPLES) -> dict[str, Any]:
    """Train and score every point of a run's learning curve; store it and return it.

    Holds the project's training lock throughout (TrainingBusyError when a training holds
    it). Raises CurveCancelled (or StopRequested from a StopControl) when asked to stop.
    """
    from annotune.core.store.records import now

    emit = emit or (lambda event: None)
    should_stop = should_stop or (lambda: False)
    run = source_run(project, run_id)
    config = run_config(project, run)
    with project.lock_training() as lock:
        lock.describe(since=now(), learning_curve_of=run["id"])
        work = Path(project.runs_dir) / str(run["id"]) / WORK_FOLDER
        try:
            curve = _compute_holding_lock(project, run, config, emit, should_stop, fractions,
                                          samples, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        path = learning_curve.write_curve(project.runs_dir, run["id"], curve)
    emit(CurveFinished(event="finished", source_run=run["id"], curve=curve, path=str(path)))
    return curve


def _compute_holding_lock(project: Any, run: Mapping[str, Any], config: TrainConfig,
                          emit: Emit, should_stop: Callable[[], bool],
                          fractions: Sequence[float], samples: int, work: Path
                          ) -> dict[str, Any]:
    from annotune.core.store.records import now
    from annotune.core.training.data import split_validation
    from annotune.core.training.device import describe_device, device_label
    from annotune.core.training.job import labeled_data
    from annotune.core.training.loop import train

    task = project.task
    settings = project.settings
    train_items, validation_items = labeled_data(project)
    if not validation_items:  # the run's own automatic split: same seed, same examples
        learning_curve.check_enough(len(train_items), str(project.path))
        train_items, validation_items = split_validation(
            train_items, task, config.validation_fraction, config.seed)
    learning_curve.check_enough(len(train_items), str(project.path))
    subsets = learning_curve.nested_subsets(train_items, task, fractions, config.seed)
    sizes = [len(subset) for subset in subsets]
    emit(CurveStarted(event="started", source_run=run["id"], fractions=list(fractions),
                      labels=sizes, validation_examples=len(validation_items),
                      device_label=device_label(describe_device(config))))
    annotations = [annotation for _, annotation in validation_items]
    points: list[dict[str, Any]] = []
    predictions: list[list[dict[str, Any]]] = []
    for index, (fraction, subset) in enumerate(zip(fractions, subsets, strict=True)):
        if should_stop():
            raise CurveCancelled()
        emit(PointStarted(event="point_started", index=index, points=len(subsets),
                          fraction=fraction, labels=len(subset)))
        folder = work / str(round(fraction * 100))
        result = train(task, settings, config, [train_items[i] for i in subset],
                       validation_items, folder, _relay(emit, sizes, index, fraction),
                       should_stop)
        if result.status == "cancelled" or result.artifact_dir is None:
            raise CurveCancelled()
        trained = result.settings or settings
        predicted = validation_predictions(task, trained, result.artifact_dir,
                                           validation_items, config, should_stop)
        shutil.rmtree(folder, ignore_errors=True)
        score = float(task.metrics(predicted, annotations, trained)[task.main_metric])
        point = {"fraction": fraction, "labels": len(subset), "score": score,
                 "best_epoch": result.best_epoch, "seconds": result.duration_s}
        points.append(point)
        predictions.append(predicted)
        low, high = learning_curve.interval(learning_curve.bootstrap(
            task, settings, [predicted], annotations, PREVIEW_SAMPLES)[:, 0])
        emit(Point(event="point", index=index, points=len(subsets), fraction=fraction,
                   labels=len(subset), score=score, best_epoch=result.best_epoch,
                   seconds=result.duration_s, low=low, high=high))
    resampled = learning_curve.bootstrap(task, settings, predictions, annotations, samples)
    curve = learning_curve.summarize(task, points, resampled, len(annotations))
    curve.update(source_run=run["id"], train_examples=len(train_items), created=now(),
                 config=config.to_dict())
    return curve


def _relay(emit: Emit, sizes: Sequence[int], index: int, fraction: float) -> Emit:
    """Pass a point's training events on, with the share of the whole curve done so far."""
    total = sum(sizes)  # a point's training time grows with its labels
    before = sum(sizes[:index]) / total
    weight = sizes[index] / total

    def relay(event: Event) -> None:
        if event["event"] == "progress":
            share = event["step"] / max(1, event["total_steps"] or 1)
            tagged = event.copy()
            tagged["index"], tagged["points"], tagged["fraction"] = index, len(sizes), fraction
            tagged["done"] = round(before + weight * share, 4)
            emit(tagged)
        elif event["event"] == "precision" or event["event"] == "memory":
            emit(event)

    return relay


def validation_predictions(task: Any, settings: Any, model_dir: str | os.PathLike[str],
                           items: Sequence[tuple[Mapping[str, str], Any]], config: TrainConfig,
                           should_stop: Callable[[], bool] | None = None
                           ) -> list[dict[str, Any]]:
    """Predict the validation examples with a point's best checkpoint (the task's decode)."""
    import torch
    import transformers

    from annotune.core.features import pad_id, prepare_tokenizer
    from annotune.core.training.device import choose_device
    from annotune.core.training.loop import Cancelled, predict
    from annotune.core.training.model import model_inputs

    device = choose_device(config)
    model_dir = Path(model_dir)
    tokenizer = prepare_tokenizer(model_dir / "tokenizer.json")
    model = getattr(transformers, task.auto_model).from_pretrained(
        str(model_dir), dtype=torch.float32).to(device)
    fields = [dict(f) for f, _ in items]
    features = task.encode(tokenizer, fields, None, settings)
    try:
        outputs, _ = predict(model, task, features, pad_id(tokenizer), device, None,
                             config.eval_batch_size, model_inputs(model), should_stop)
    except Cancelled:
        raise CurveCancelled() from None
    return task.decode(fields, features, outputs, settings)


# -- the child process ----------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Compute one learning curve; return the exit code (0 finished, 1 failed, 130 stopped)."""
    from annotune.core.lifeline import PARENT_ENV, ParentWatch, die_with_parent
    from annotune.core.training.job import _event_stream

    stop = StopControl()
    stop.install()
    if PARENT_ENV in os.environ:
        die_with_parent(True)  # nothing to record on the way out: the kernel may end it
    ParentWatch(exit_code=EXIT_FAILED).start()
    parser = argparse.ArgumentParser(prog="python -m annotune.core.training.learning_curve_job",
                                     description="Compute a run's learning curve; JSON lines out.")
    parser.add_argument("--project", required=True, help="the .annotune project file")
    parser.add_argument("--run", type=int, default=None,
                        help="the finished run whose configuration is retrained "
                             "(default: the newest finished run)")
    try:
        args = parser.parse_args(argv)
        out = _event_stream()
    except StopRequested:
        return EXIT_CANCELLED

    def emit(event: Event) -> None:
        line = json.dumps(event, ensure_ascii=False, default=str) + "\n"
        with stop.deferred():
            out.write(line)

    project = None
    try:
        from annotune.core.store import Project
        from annotune.core.store.runs import TrainingBusyError

        project = Project.open(args.project)
        compute(project, args.run, emit, stop)
        return EXIT_FINISHED
    except (StopRequested, CurveCancelled):
        stop.finishing()
        emit(CancelledEvent(event="cancelled"))
        return EXIT_CANCELLED
    except AnnotuneError as error:
        stop.finishing()
        emit(Failed(event="failed", error=str(error), log=None,
                    busy=isinstance(error, TrainingBusyError)))
        return EXIT_FAILED
    except Exception as error:  # reported with its traceback in a log, as the training job's
        stop.finishing()
        handle, name = tempfile.mkstemp(prefix="annotune-learning-curve-", suffix=".log")
        with os.fdopen(handle, "w") as log:
            log.write(traceback.format_exc())
        emit(Failed(event="failed", log=name,
                    error=f"the learning curve stopped by an unexpected error: "
                          f"{type(error).__name__}: {error}"))
        return EXIT_FAILED
    finally:
        stop.finishing()
        if project is not None:
            project.close()
        out.flush()


class LearningCurveProcess(TrainingProcess):
    """Start the learning-curve child; read its events, stop or kill it as a training job."""

    def start_curve(self, project_path: str | os.PathLike[str], run_id: int | None = None,
                    env: Mapping[str, str] | None = None) -> None:
        """Start computing the learning curve of a run (None: the newest finished one).

        Raises TrainingBusyError at once when a training of the project is running.
        """
        if self.running:
            raise AnnotuneError("a learning curve is already being computed",
                                hint="wait for it to finish or stop it first")
        self.project_path = Path(project_path)
        _refuse_when_busy(self.project_path)
        self.run_id, self.ended, self._stopping = None, None, None  # no run is recorded
        handle, name = tempfile.mkstemp(prefix="annotune-learning-curve-", suffix=".log")
        self.log_path = Path(name)
        command = [self.python, "-m", "annotune.core.training.learning_curve_job",
                   "--project", str(self.project_path)]
        if run_id is not None:
            command += ["--run", str(run_id)]
        child_env = {"PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                     "TRANSFORMERS_VERBOSITY": "error", **(env or {})}
        with os.fdopen(handle, "w") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, encoding="utf-8",
                bufsize=1, **child_options(child_env))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as the training job: skip torch's slow interpreter teardown
