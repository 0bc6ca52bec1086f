"""The training job: one run in a child process that reports JSON lines.

Child: ``python -m annotune.core.training.job --project PATH --config JSON`` trains one run of
the project and prints one JSON object per line on stdout (``python -m
annotune.core.training.job RUN_DIR`` trains a prepared run spec instead, in every process
torchrun or accelerate launch starts: spec_job.py)::

    {"event": "started", "run_id", "device" (describe_device), "device_label", "run_dir",
     "train_examples", "validation_examples"}
    {"event": "progress", "step", "total_steps", "epoch", "loss", "eta_s", "samples_per_s"}
    {"event": "metrics", "epoch", "train_loss", "metrics"}
    {"event": "finished", "run_id", "artifact_dir", "metrics", "best_epoch"}
    {"event": "failed", "error", "log", "busy"}  (log: a traceback file, for unexpected errors;
                                                  busy: another training of the project runs)
    {"event": "cancelled", "run_id", "artifact_dir"}

A training holds the project's training lock (core/store/training_lock.py) from before its run
exists until after its end is recorded: a second training of the project is refused, and a
run left "running" by a killed process is closed by whoever looks next.

Stop requests (SIGINT, SIGTERM, Ctrl+Break) end the child at once before the training loop
runs, and at the next step or evaluation batch once it runs (stopping.py); the run is recorded
as cancelled. A child started with a lifeline (core/lifeline.py) ends when its parent dies.

Parent: ``TrainingProcess`` (job_process.py, importable from here) starts the child, reads
its events and stops it; the CLI and the desktop both use it. ``run_training_inline`` is the
same code path without a process, for tests and scripts.

This module imports no torch at module level: the desktop imports TrainingProcess in the GUI
process, and the child installs its signal handlers before the slow imports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from annotune.core.errors import AnnotuneError
from annotune.core.events import (
    Cancelled,
    Emit,
    Event,
    Failed,
    TrainingFinished,
    TrainingStarted,
    is_end,
)
from annotune.core.training.config import TrainConfig
from annotune.core.training.job_process import (  # noqa: F401 (the parent side, as before)
    END_EVENTS,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_FINISHED,
    TrainingProcess,
)
from annotune.core.training.stopping import StopControl, StopRequested

if TYPE_CHECKING:
    from annotune.core.training.validation_split import Item

# set by torchrun's elastic agent (and so by accelerate launch) in every process it starts
LAUNCHER_ENV = "TORCHELASTIC_RUN_ID"
# what TrainingProcess gives its child: no download bars or load reports in the launcher's log
QUIET_LIBRARIES = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}


def labeled_data(project: Any) -> tuple[list[Item], list[Item]]:
    """Return (train, validation) items from the project's accepted annotations.

    The examples' split decides; examples of no split train; the test split is left out.
    An empty validation list asks the loop for its automatic stratified split.
    """
    from annotune.core.training.validation_split import labeled_items

    labeled = labeled_items(project)
    return labeled.train, labeled.validation


def training_split(project: Any, config: TrainConfig) -> Any:
    """Return the ValidationSplit a run of the project trains on (train, validation, record).

    The project's validation split when it has one, else ``config.validation_fraction`` held
    out with ``config.seed``, related examples (near-duplicate texts, one document's sentences,
    one article's questions) kept on one side.
    """
    from annotune.core.training.validation_split import labeled_items, project_split

    labeled = labeled_items(project)
    if not labeled.train and not labeled.validation:
        raise AnnotuneError("the project has no labeled examples to train on",
                            where=str(project.path),
                            hint="label examples (or import labeled data) first")
    return project_split(labeled, project.task, config.validation_fraction, config.seed)


def prepare_run(project: Any, config: TrainConfig | Mapping[str, Any],
                run_dir: str | os.PathLike[str]) -> Any:
    """Freeze a run of the project into ``run_dir`` for torchrun or accelerate; return its spec.

    The examples are read from the project once (the split a run started here would train
    on); the processes that train the spec never open the project.
    """
    from annotune.core.training.spec import write_spec

    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config)
    if config.base_model is None and project.base_model:
        config = config.with_(base_model=project.base_model)
    project.task.check_settings(project.settings.with_(max_length=int(config.max_length))
                                if config.max_length is not None else project.settings)
    split = training_split(project, config)
    train_items, validation_items = split.train, split.validation
    return write_spec(run_dir, project.task_name, project.settings, config, train_items,
                      validation_items, project_path=project.path,
                      project_created=project.created)


def _write_log(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "error.log"
    path.write_text(text)
    return path


def run_training_inline(project: Any, config: TrainConfig | Mapping[str, Any],
                        emit: Emit | None = None, should_stop: Callable[[], bool] | None = None
                        ) -> Any:
    """Train one run of an open project in this process; record it in the store.

    Emits the same events as the job; returns the loop's TrainResult. Holds the project's
    training lock throughout (TrainingBusyError when another training holds it). Errors are
    recorded on the run, emitted as a failed event and raised again; so is a StopRequested
    from a StopControl passed as ``should_stop`` (recorded as cancelled).
    """
    from annotune.core.store.runs import TrainingBusyError

    emit = emit or (lambda event: None)
    control = should_stop if isinstance(should_stop, StopControl) else None
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config)
    if config.base_model is None and project.base_model:
        config = config.with_(base_model=project.base_model)
    try:
        lock = project.lock_training()
    except TrainingBusyError as error:
        emit(Failed(event="failed", run_id=None, error=str(error), log=None, busy=True))
        raise
    with lock:
        lock.describe(since=_now())
        return _train_holding_lock(project, config, emit, should_stop, control, lock)


def _train_holding_lock(project: Any, config: TrainConfig, emit: Emit,
                        should_stop: Callable[[], bool] | None, control: StopControl | None,
                        lock: Any) -> Any:
    run_id: int | None = None
    run_dir: Path | None = None
    undivided = control.deferred if control is not None else nullcontext
    try:
        from annotune.core.long_texts import count_for_training
        from annotune.core.training.device import describe_device, device_label
        from annotune.core.training.loop import train
        task = project.task
        # split here, so "started" reports the real sizes; the examples' origins (documents,
        # articles) keep related examples on one side
        split = training_split(project, config)
        train_items, validation_items = split.train, split.validation
        long_texts = count_for_training(task, project.settings, config.base_model,
                                        config.max_length,
                                        [f for f, _ in [*train_items, *validation_items]])
        device = describe_device(config)
        label = device_label(device)
        with undivided():  # a run that exists is announced with its id, or not created at all
            run_id = project.create_run(config.to_dict(), label)
            # absolute: the events name it to programs that may run in another folder
            run_dir = Path(os.path.abspath(project.runs_dir / str(run_id)))
            lock.describe(since=_now(), run_id=run_id)
            emit(TrainingStarted(event="started", run_id=run_id, device=device,
                                 device_label=label, run_dir=str(run_dir), task=task.name,
                                 base_model=config.base_model,
                                 train_examples=len(train_items),
                                 validation_examples=len(validation_items),
                                 long_texts=long_texts))

        def relay(event: Event) -> None:
            if event["event"] == "metrics":
                project.record_epoch(run_id, event["epoch"],
                                     {**event["metrics"], "train_loss": event["train_loss"]})
            emit(event)

        result = train(task, project.settings, config, train_items, validation_items, run_dir,
                       relay, should_stop, split_record=split.record)
    except StopRequested:
        _finishing(control)
        if run_id is not None:
            project.finish_run(run_id, "cancelled", only_running=True)
        emit(Cancelled(event="cancelled", run_id=run_id, artifact_dir=None))
        raise
    except AnnotuneError as error:
        _finishing(control)
        if run_id is not None:
            project.finish_run(run_id, "failed", error=str(error))
        emit(Failed(event="failed", run_id=run_id, error=str(error), log=None))
        raise
    except Exception as error:
        _finishing(control)
        log = _write_log(run_dir or Path(os.path.abspath(project.runs_dir)),
                         traceback.format_exc())
        message = f"training stopped by an unexpected error: {type(error).__name__}: {error}"
        if run_id is not None:
            project.finish_run(run_id, "failed", error=f"{message} (details in {log})")
        emit(Failed(event="failed", run_id=run_id, error=message, log=str(log)))
        raise
    _finishing(control)
    from annotune.core.store.runs import stored_folder

    artifact = str(result.artifact_dir) if result.artifact_dir is not None else None
    project.finish_run(run_id, result.status, metrics=result.metrics or None,
                       artifact_dir=None if artifact is None
                       else stored_folder(artifact, Path(project.path).parent))
    if result.status == "cancelled":
        emit(Cancelled(event="cancelled", run_id=run_id, artifact_dir=artifact,
                       run_dir=str(run_dir), metrics=result.metrics,
                       best_epoch=result.best_epoch, duration_s=result.duration_s))
    else:
        emit(TrainingFinished(event="finished", run_id=run_id, artifact_dir=artifact,
                              run_dir=str(run_dir), metrics=result.metrics,
                              best_epoch=result.best_epoch, duration_s=result.duration_s))
    return result


def _finishing(control: StopControl | None) -> None:
    if control is not None:
        control.finishing()


def _now() -> str:
    from annotune.core.store.records import now

    return now()


# -- the child process ----------------------------------------------------------------------


class _Child:
    """What the child knows about itself, for a thread that must end it (its parent died)."""

    def __init__(self) -> None:
        self.project_path: Path | None = None
        self.run_id: int | None = None
        self.ended = False  # an end event (finished, failed, cancelled) is out
        self.watch: Any = None

    def parent_gone(self, reason: str) -> None:
        """Record why the run ends (at most a second for the store's write lock)."""
        if self.project_path is None or self.run_id is None:
            return
        from annotune.core.store.runs import end_run_in_file

        end_run_in_file(self.project_path, self.run_id, "failed",
                        f"the training stopped because {reason}", timeout=1.0)


def _event_stream() -> IO[str]:
    """Keep the real stdout for events only; anything else printed goes to stderr.

    Libraries (and C extensions) print to fd 1; a stray line there would break the parent's
    JSON parsing, so fd 1 is pointed at stderr and events get a private copy of the old fd 1.
    """
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    return events


def _read_config(text: str) -> TrainConfig:
    if not text.lstrip().startswith("{"):
        try:
            text = Path(text).read_text()
        except OSError as error:
            raise AnnotuneError(f"cannot read the training config file: {error}",
                                where=text) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise AnnotuneError(f"the training config is not valid JSON: {error.msg}",
                            where=f"--config (character {error.pos})") from None
    if not isinstance(data, dict):
        raise AnnotuneError("the training config must be a JSON object", where="--config")
    return TrainConfig.from_dict(data)


def main(argv: list[str] | None = None) -> int:
    """Run one training job; return its exit code (0 finished, 1 failed, 130 cancelled)."""
    from annotune.core.lifeline import PARENT_ENV, ParentWatch, die_with_parent

    stop = StopControl()
    stop.install()
    child = _Child()
    if LAUNCHER_ENV in os.environ:
        # started by torchrun's agent, not by the process the lifeline names: the watch
        # would take the agent for a parent that died
        os.environ.pop(PARENT_ENV, None)
    if PARENT_ENV in os.environ:
        # until the run exists there is nothing to record on the way out: the kernel may kill
        # this process with its parent, whatever this process is doing (a long import)
        die_with_parent(True)
    watch = ParentWatch(child.parent_gone, exit_code=EXIT_FAILED)
    child.watch = watch if watch.start() else None
    try:
        parser = argparse.ArgumentParser(
            prog="python -m annotune.core.training.job",
            description="Train one run of a project, or a prepared run folder (alone or in "
                        "every process torchrun or accelerate launch starts); JSON lines out.")
        parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                            help="a run folder written by `annotune train PROJECT "
                                 "--prepare-only RUN_DIR`")
        parser.add_argument("--project", help="the .annotune project file")
        parser.add_argument("--config", default="{}", help="TrainConfig as JSON, or a JSON file")
        args = parser.parse_args(argv)
        if (args.run_dir is None) == (args.project is None):
            parser.error("give either a prepared RUN_DIR or --project PROJECT")
        if args.run_dir is not None:  # started by a launcher, not by TrainingProcess
            for name, value in QUIET_LIBRARIES.items():
                os.environ.setdefault(name, value)
        out = _event_stream()
        with _emitter(out, stop, child) as emit:
            if args.run_dir is not None:
                return _run_spec(args.run_dir, emit, stop)
            return _run(args, emit, stop, child)
    except StopRequested:
        return EXIT_CANCELLED


@contextmanager
def _emitter(out: IO[str], stop: StopControl, child: _Child) -> Iterator[Emit]:
    """Yield the child's emit: one JSON line per event, never cut in two by a stop request."""
    from annotune.core.lifeline import die_with_parent

    def emit(event: Event) -> None:
        line = json.dumps(event, ensure_ascii=False, default=str) + "\n"
        try:
            with stop.deferred():
                out.write(line)
        except (BrokenPipeError, ValueError):
            if child.watch is None:
                raise
            child.watch.parent_gone("the program that started it stopped reading its events")
        if event["event"] == "started":
            run_id = event.get("run_id")  # a training's started event names its run
            child.run_id = run_id if isinstance(run_id, int) else None
            # from here on the watch thread records why the run ends if the parent dies
            die_with_parent(False)
        if is_end(event):
            child.ended = True

    try:
        yield emit
    finally:
        try:
            out.flush()
        except (OSError, ValueError):
            pass


def _run_spec(run_dir: str, emit: Emit, stop: StopControl) -> int:
    """Train a prepared run folder; a failure before its record exists is one failed event."""
    try:
        from annotune.core.training.spec_job import train_spec

        return train_spec(run_dir, emit, stop)
    except StopRequested:
        return EXIT_CANCELLED
    except AnnotuneError as error:  # not a run spec, trained already, busy
        stop.finishing()
        from annotune.core.store.runs import TrainingBusyError

        emit(Failed(event="failed", run_id=None, error=str(error), log=None,
                    busy=isinstance(error, TrainingBusyError)))
        return EXIT_FAILED


def _run(args: argparse.Namespace, emit: Emit, stop: StopControl, child: _Child) -> int:
    project = None
    try:
        from annotune.core.store import Project

        config = _read_config(args.config)
        project = Project.open(args.project)
        child.project_path = project.path
        result = run_training_inline(project, config, emit, stop)
    except StopRequested:  # a run that exists is recorded as cancelled already
        stop.finishing()
        if not child.ended:
            emit(Cancelled(event="cancelled", run_id=child.run_id, artifact_dir=None))
        return EXIT_CANCELLED
    except AnnotuneError as error:
        stop.finishing()
        if not child.ended:  # the config or the project, before any run
            emit(Failed(event="failed", run_id=None, error=str(error), log=None))
        return EXIT_FAILED
    except Exception:  # recorded and emitted as a failed event
        return EXIT_FAILED
    finally:
        stop.finishing()
        if project is not None:
            project.close()
    return EXIT_CANCELLED if result.status == "cancelled" else EXIT_FINISHED


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # the run is recorded and the events are out: skip the interpreter's teardown of torch
    # and its threads, which can take longer than the rest of a cancelled run's exit
    os._exit(code)
