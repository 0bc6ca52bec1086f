"""The label check as a child process that reports JSON lines, and its parent's side.

Child: ``python -m annotune.core.label_check_job --project PATH --folds K --config JSON``
checks the project's accepted annotations (core/label_check.py) and prints one JSON object
per line on stdout::

    {"event": "started", "check_id", "examples", "folds", "device_label"}
    {"event": "fold", "fold", "folds", "train_examples", "held_out"}
    {"event": "progress", "fold", "folds", "step", "total_steps", "epoch", "loss", "eta_s"}
    {"event": "metrics", "fold", "folds", "epoch", "metrics"}
    {"event": "finished", "check_id", "issues", "suspects"}   (suspects: score >= 0.5)
    {"event": "failed", "error", "log"} | {"event": "cancelled", "check_id"}

The check is recorded in the project as running when it starts and, with all of its issues
in one transaction, when it ends; a stopped or failed check stores no issues. Stop requests
and the lifeline work as for the training job (core/training/job.py, core/lifeline.py): the
parent's side is ``LabelCheckProcess``, a TrainingProcess that starts this module instead.

Imports no torch at module level: the desktop imports LabelCheckProcess in the GUI process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.events import Cancelled as CancelledEvent
from annotune.core.events import Emit, Event, Failed, LabelCheckFinished, LabelCheckStarted
from annotune.core.label_check import DEFAULT_FOLDS
from annotune.core.lifeline import child_options
from annotune.core.training.config import TrainConfig
from annotune.core.training.job_process import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_FINISHED,
    TrainingProcess,
)
from annotune.core.training.stopping import StopControl, StopRequested

SUSPECT_SCORE = 0.5  # the models give the given annotation less than even odds


class LabelCheckProcess(TrainingProcess):
    """Start a label check as a child process, read its events, stop it (as for training)."""

    def start(self, project_path: str | Path, config: TrainConfig | Mapping[str, Any] | None
              = None, env: Mapping[str, str] | None = None, folds: int = DEFAULT_FOLDS
              ) -> None:
        """Start the check of a project; events() then yields what it reports."""
        if self.process is not None and self.process.poll() is None:
            raise AnnotuneError("a label check is already running",
                                hint="wait for it to finish or stop it first")
        if not isinstance(config, TrainConfig):
            config = TrainConfig.from_dict(config or {})
        self.project_path = Path(project_path)
        self.run_id, self.ended, self._stopping = None, None, None
        handle, name = tempfile.mkstemp(prefix="annotune-check-", suffix=".log")
        self.log_path = Path(name)
        child_env = {"PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                     "TRANSFORMERS_VERBOSITY": "error", **(env or {})}
        with os.fdopen(handle, "w") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "annotune.core.label_check_job", "--project",
                 str(self.project_path), "--folds", str(int(folds)),
                 "--config", json.dumps(config.to_dict())],
                stdout=subprocess.PIPE, stderr=log, text=True, encoding="utf-8", bufsize=1,
                **child_options(child_env))


def run_check_inline(project: Any, config: TrainConfig, folds: int = DEFAULT_FOLDS,
                     emit: Emit | None = None, should_stop: Callable[[], bool] | None = None
                     ) -> int:
    """Check an open project's accepted annotations in this process; return the check id.

    Emits the child's events. A stop (StopRequested, or the loop's Cancelled) records the
    check as cancelled and is raised again; so is any error, recorded as failed.
    """
    from annotune.core.label_check import find_label_issues
    from annotune.core.training.device import describe_device, device_label
    from annotune.core.training.loop import Cancelled

    emit = emit or (lambda event: None)
    if config.base_model is None and project.base_model:
        config = config.with_(base_model=project.base_model)
    labeled = project.labeled()
    items = [(example.id, dict(example.fields), annotation) for example, annotation in labeled]
    if not items:
        raise AnnotuneError("the project has no accepted annotations to check",
                            where=str(project.path), hint="label examples first")
    check_id = project.start_label_check({"folds": folds, "train": config.to_dict()})
    try:
        emit(LabelCheckStarted(event="started", check_id=check_id, examples=len(items),
                               folds=folds, device_label=device_label(describe_device(config))))
        ranked = find_label_issues(project.task, project.settings, config, items, folds, emit,
                                   should_stop)
    except (StopRequested, Cancelled):
        _finishing(should_stop)
        project.finish_label_check(check_id, "cancelled")
        emit(CancelledEvent(event="cancelled", check_id=check_id))
        raise
    except BaseException as error:
        _finishing(should_stop)
        project.finish_label_check(check_id, "failed", error=str(error))
        raise
    _finishing(should_stop)
    rows = [(r.example_id, r.issue.score, r.annotation, r.issue.suggestion, r.issue.reasons)
            for r in ranked]
    project.finish_label_check(check_id, "finished", rows)
    emit(LabelCheckFinished(event="finished", check_id=check_id, issues=len(rows),
                            suspects=sum(1 for r in ranked if r.issue.score >= SUSPECT_SCORE)))
    return check_id


def _finishing(should_stop: Any) -> None:
    if isinstance(should_stop, StopControl):
        should_stop.finishing()


def main(argv: list[str] | None = None) -> int:
    """Run one label check; return its exit code (0 finished, 1 failed, 130 cancelled)."""
    from annotune.core.lifeline import PARENT_ENV, ParentWatch, die_with_parent
    from annotune.core.training.job import _event_stream, _read_config

    stop = StopControl()
    stop.install()
    if PARENT_ENV in os.environ:
        die_with_parent(True)  # nothing here needs recording if the parent dies
    watch = ParentWatch(None, exit_code=EXIT_FAILED)
    watch.start()
    parser = argparse.ArgumentParser(prog="python -m annotune.core.label_check_job",
                                     description="Check a project's labels; JSON lines out.")
    parser.add_argument("--project", required=True, help="the .annotune project file")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS)
    parser.add_argument("--config", default="{}", help="TrainConfig as JSON, or a JSON file")
    args = parser.parse_args(argv)
    out = _event_stream()

    def emit(event: Event) -> None:
        with stop.deferred():
            out.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")

    try:  # torch: the slow import, where a stop request is likeliest
        from annotune.core.training.loop import Cancelled
    except StopRequested:
        return EXIT_CANCELLED
    project = None
    try:
        from annotune.core.store import Project

        config = _read_config(args.config)
        project = Project.open(args.project)
        run_check_inline(project, config, args.folds, emit, stop)
        return EXIT_FINISHED
    except (StopRequested, Cancelled):  # recorded and emitted as cancelled
        return EXIT_CANCELLED
    except AnnotuneError as error:
        stop.finishing()
        emit(Failed(event="failed", error=str(error), log=None))
        return EXIT_FAILED
    except Exception as error:
        stop.finishing()
        handle, name = tempfile.mkstemp(prefix="annotune-check-error-", suffix=".log")
        with os.fdopen(handle, "w") as log:
            log.write(traceback.format_exc())
        emit(Failed(event="failed", error=f"the label check stopped by an unexpected error: "
                                         f"{type(error).__name__}: {error}", log=name))
        return EXIT_FAILED
    finally:
        stop.finishing()
        if project is not None:
            project.close()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the check is recorded: skip torch's slow interpreter teardown
