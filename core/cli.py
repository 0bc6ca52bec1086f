"""The command line: parses arguments, calls core, prints. User errors become exit codes.

Heavy modules (torch, transformers, onnxruntime) are imported inside the commands that need
them, so `annotune --help` and `annotune predict` start quickly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from annotune.core import __version__
from annotune.core.errors import AnnotuneError
from annotune.core.events import Cancelled, Event, Failed, JobEnd, Progress, is_end

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 130  # argparse exits 2 on a usage error
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what `yes | head -1` reports for yes


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _registry():
    from annotune.core.plugins import registry

    found = registry()
    for failure in found.failures:
        print(f"warning: {failure}", file=sys.stderr)
    return found


def _open(path: str):
    from annotune.core.store import Project

    return Project.open(Path(path))


def _parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise AnnotuneError(f"--map '{pair}' is not FIELD=COLUMN",
                                hint="for example --map text=sentence --map label=sentiment")
        mapping[field.strip()] = column.strip()
    return mapping


# -- project and data ------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from annotune.core.store import Project

    task = _registry().task(args.task)
    labels = tuple(label.strip() for label in (args.labels or "").split(",") if label.strip())
    settings = task.default_settings().with_(labels=labels, **_given_task_options(args, task))
    overrides = {k: v for k, v in (("max_length", args.max_length), ("stride", args.stride))
                 if v is not None}
    settings = settings.with_(**overrides)
    task.check_settings(settings)
    project = Project.create(Path(args.project), task=task.name, settings=settings,
                             base_model=args.base_model)
    print(f"created {project.path} ({task.title}; labels: {', '.join(labels) or 'none'})")
    return EXIT_OK


def _given_task_options(args: argparse.Namespace, task: Any) -> dict[str, object]:
    """Return the task options typed on the command line, checked against the task's own."""
    given: dict[str, object] = {}
    for key, value in vars(args).items():
        if not key.startswith(_OPTION_PREFIX) or value is None:
            continue
        name = key.removeprefix(_OPTION_PREFIX)
        option = next((item for item in task.options if item.name == name), None)
        if option is None:
            flag = "--" + name.replace("_", "-")
            own = ", ".join(item.flag for item in task.options) or "none"
            raise AnnotuneError(f"the {task.title} task takes no {flag}",
                                hint=f"drop {flag} (its own options: {own})")
        given[name] = option.validate(value) if isinstance(value, bool) else option.parse(value)
    return given


def cmd_import(args: argparse.Namespace) -> int:
    from annotune.core.formats.base import ImportOptions
    from annotune.core.formats.importing import import_file

    _registry()
    project = _open(args.project)
    options = ImportOptions(mapping=_parse_mapping(args.map), skip_bad_rows=args.skip_bad_rows,
                            split=args.split)
    report = import_file(project, Path(args.file), format=args.format, options=options)
    for note in getattr(report, "notes", []):
        print(note, file=sys.stderr)
    for skipped in getattr(report, "skipped", []):
        print(f"skipped {skipped}", file=sys.stderr)
    print(report)
    return EXIT_OK


def cmd_export_data(args: argparse.Namespace) -> int:
    from annotune.core.formats.importing import export_data

    _registry()
    count = export_data(_open(args.project), Path(args.output), format=args.format,
                        include_skipped=args.include_skipped, replace=args.force)
    print(f"wrote {count} annotated examples to {args.output}")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    _registry()
    project = _open(args.project)
    stats = project.stats(long_texts=True)
    stats = {"task": project.task_name, "labels": list(project.settings.labels), **stats}
    _print_json(stats)
    note = long_text_note(stats["long_texts"])
    if note:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


def cmd_labels(args: argparse.Namespace) -> int:
    """List the project's labels with how often each is used; --add appends new ones."""
    _registry()
    project = _open(args.project)
    try:
        if args.add:
            added = [name for group in args.add for name in group.split(",") if name.strip()]
            project.add_labels(added)
            print(f"added {', '.join(name.strip() for name in added)} to {project.path}")
        counts = project.stats()["labels"]
        width = max((len(label) for label in counts), default=0)
        for number, label in enumerate(project.settings.labels, start=1):
            key = f"{number}" if number <= 9 else " "
            print(f"{key}  {label:<{width}}  {counts.get(label, 0)} labeled")
    finally:
        project.close()
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy a project, whole and consistent, even while another program has it open."""
    project = _open(args.project)
    try:
        report = project.backup(Path(args.destination), force=args.force)
    finally:
        project.close()
    print(report)
    return EXIT_OK


def long_text_note(counts: dict | None) -> str | None:
    """Say how many texts are longer than a model window (None when none is, or unknown)."""
    from annotune.core.long_texts import describe

    if not counts:
        return None
    return counts.get("unknown") or describe(counts, counts.get("max_length", 0))


def with_error(value: object, metrics: dict, key: str) -> str:
    """Format a metric, followed by ``±`` its standard error when the run measured one.

    A score at the edge of its range has an exact interval and no standard error (see
    core/score_interval.py): the interval follows it instead of a ``±0``.
    """
    text = format_number(value)
    spread = metrics.get("uncertainty") if isinstance(metrics, dict) else None
    if not text or not isinstance(spread, dict) or spread.get("metric") != key:
        return text
    if isinstance(spread.get("standard_error"), int | float):
        text += f" ±{format_number(float(spread['standard_error']))}"
    elif isinstance(value, int | float) and isinstance(spread.get("low"), int | float) \
            and isinstance(spread.get("high"), int | float):
        low, high = float(spread["low"]), float(spread["high"])
        if high <= value:  # a perfect score: how low the truth may still be
            text += f" (95 % ≥ {format_number(low)})"
        elif low >= value:  # a null score
            text += f" (95 % ≤ {format_number(high)})"
        else:
            text += f" (95 % interval {format_number(low)}–{format_number(high)})"
    return text


def uncertainty_line(metrics: dict) -> str | None:
    """Describe the main metric's spread: standard error and 95 % interval on n examples."""
    spread = (metrics or {}).get("uncertainty")
    if not isinstance(spread, dict) or spread.get("low") is None or spread.get("high") is None:
        return None
    error = spread.get("standard_error")
    plus_minus = f" ±{format_number(error)}" if isinstance(error, int | float) else ""
    return (f"validation {spread['metric']} {format_number(metrics.get(spread['metric']))}"
            f"{plus_minus} (95 % interval "
            f"{format_number(spread['low'])}–{format_number(spread['high'])}, "
            f"{spread['examples']:,} validation examples)")


# -- training --------------------------------------------------------------------------------
def _train_config(args: argparse.Namespace):
    from dataclasses import fields

    from annotune.core.training.config import TrainConfig

    values = {item.name: getattr(args, item.name) for item in fields(TrainConfig)
              if getattr(args, item.name, None) is not None}
    if "compile" in values:
        values["compile"] = _COMPILE_CHOICES[values["compile"]]
    if not values.get("freeze_encoder"):
        values.pop("freeze_encoder", None)
    return TrainConfig.from_dict(values)


def _follow_child(process: Any, start: Any, show: Callable[[Event], JobEnd | None],
                  bar: ProgressBar, what: str,
                  kept_after_stop: tuple[str, ...] = ("cancelled",)) -> JobEnd:
    """Start a child job and show its events until it ends; return the event that ended it.

    ``show(event)`` draws one event and returns it when it ends the job. Ctrl-C asks the child
    to stop; a second one kills it at once. After a stop the child's own end event is kept
    when its kind is in ``kept_after_stop``, else the job counts as cancelled.
    """
    final: JobEnd = Failed(event="failed", error=f"the {what} ended without a result")
    try:
        start()
        for event in process.events():
            final = show(event) or final
    except KeyboardInterrupt:
        if process.process is None:
            raise
        try:
            bar.finish_line()
            print("stopping… (Ctrl-C again to stop at once)", file=sys.stderr)
            process.stop()
        except KeyboardInterrupt:
            process.kill()
        for event in process.events():
            if is_end(event):
                final = event
        if final["event"] not in kept_after_stop:
            final = Cancelled(event="cancelled")
    bar.finish_line()
    return final


def _run_training(project_path: Path, config) -> JobEnd:
    """Run the training job in its child process, drawing progress; return the final event.

    Ctrl-C asks the job to stop (it ends within about 3 s, the run recorded as cancelled);
    a second Ctrl-C kills it at once.
    """
    from annotune.core.training.job import TrainingProcess

    process = TrainingProcess()
    bar = ProgressBar()
    task: Any = None

    def show(event: Event) -> JobEnd | None:
        nonlocal task
        if event["event"] == "started":
            task = _task_or_none(event.get("task"))
        return _show_training_event(event, bar, task)

    return _follow_child(process, lambda: process.start(project_path, config), show, bar,
                         "training process")


def _task_or_none(name: object) -> Any:
    """The task a training reports, or None when no plugin provides it."""
    try:
        return _registry().task(str(name)) if name else None
    except AnnotuneError:
        return None


def _show_training_event(event: Event, bar: ProgressBar, task: Any = None) -> JobEnd | None:
    """Draw one event of the training job; return it when it ends the run.

    Metrics are named as `annotune runs` names them (display_names), the measured precision
    is said in words.
    """
    from annotune.core.display_names import metric_title, precision_sentence

    if event["event"] == "started":
        print(f"training run {event.get('run_id')} on {event.get('device_label')}: "
              f"{event.get('train_examples', '?')} training and "
              f"{event.get('validation_examples', '?')} validation examples", file=sys.stderr)
        examples = event.get("train_examples")
        advice = (task.training_advice(int(examples))
                  if task is not None and isinstance(examples, int) else None)
        if advice:
            print(f"note: {advice}", file=sys.stderr)
        long_texts = event.get("long_texts")
        note = long_text_note(long_texts if isinstance(long_texts, dict) else None)
        if note:
            print(note, file=sys.stderr)
    elif event["event"] == "progress":
        bar.update(event)
    elif event["event"] == "precision":  # the measured precision
        bar.finish_line()
        print(precision_sentence(event.get("probe")) or event.get("message") or "",
              file=sys.stderr)
    elif event["event"] == "memory":  # a smaller batch
        bar.finish_line()
        print(event.get("message", ""), file=sys.stderr)
    elif event["event"] == "metrics":
        bar.finish_line()
        metrics = event.get("metrics", {})
        shown = ", ".join(f"{metric_title(k, task)} {with_error(v, metrics, k)}"
                          for k, v in metrics.items()
                          if isinstance(v, int | float) and not isinstance(v, bool))
        print(f"epoch {event.get('epoch')}: {shown}", file=sys.stderr)
    elif is_end(event):
        return event
    return None


def cmd_train(args: argparse.Namespace) -> int:
    _registry()
    if args.prepare_only:
        return _prepare_run(args)
    project = _open(args.project)
    path = project.path
    project.close()
    final = _run_training(path, _train_config(args))
    kind = final.get("event")
    if kind == "finished":
        print(f"run {final.get('run_id')} finished: {final.get('artifact_dir')}")
        metrics = final.get("metrics")
        spread = uncertainty_line(metrics if isinstance(metrics, dict) else {})
        if spread:
            print(f"{spread}, epoch {final.get('best_epoch')}")
        return EXIT_OK
    if kind == "cancelled":
        print("training cancelled; the run is recorded as cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    if final.get("busy"):  # another training of the project holds it: nothing was started
        raise AnnotuneError(str(final.get("error")))
    raise AnnotuneError(f"training failed: {final.get('error')}",
                        hint=f"details in {final.get('log')}" if final.get("log") else None)


def _prepare_run(args: argparse.Namespace) -> int:
    """Freeze the run into a folder that torchrun or accelerate launch trains (no training)."""
    import shlex

    from annotune.core.training.job import prepare_run

    with _open(args.project) as project:
        spec = prepare_run(project, _train_config(args), Path(args.prepare_only))
    folder = shlex.quote(str(spec.folder))
    job = f"-m annotune.core.training.job {folder}"
    print(f"prepared {spec.folder}: {spec.examples('train'):,} training and "
          f"{spec.examples('validation'):,} validation examples, {spec.config.batch_size} "
          "examples per optimizer step in all (shared by the processes)")
    print("train it on N GPUs of this machine with one of:")
    print(f"  torchrun --nproc-per-node N {job}")
    print(f"  accelerate launch --multi_gpu --num_processes N {job}")
    print(f"or in one process: python {job}")
    print("the run is recorded in the project when it ends (or with `annotune record-run "
          f"{shlex.quote(args.project)} {folder}`); several machines: docs/distributed.md")
    return EXIT_OK


def cmd_record_run(args: argparse.Namespace) -> int:
    from annotune.core.training.spec_record import record_in_project

    project = _open(args.project)
    run_id, added = record_in_project(project, Path(args.run_dir))
    run = project.run(run_id)
    try:
        main = _registry().task(project.task_name).main_metric
    except AnnotuneError:
        main = None
    score = (run.get("metrics") or {}).get(main) if main else None
    shown = f", {main} {format_number(score)}" if score is not None else ""
    said = "recorded" if added else "was recorded already"
    print(f"{args.run_dir} {said} as run {run_id} ({run['status']}{shown})")
    if run.get("error"):
        print(f"run {run_id} {run['status']}: {run['error']}", file=sys.stderr)
    return EXIT_OK


# -- label check -------------------------------------------------------------------------------
def _run_label_check(project_path: Path, config, folds: int) -> JobEnd:
    """Run the label check in its child process, drawing progress; return the final event.

    Ctrl-C asks it to stop (the check is recorded as cancelled); a second one kills it.
    """
    from annotune.core.label_check_job import LabelCheckProcess

    process = LabelCheckProcess()
    bar = ProgressBar()
    return _follow_child(process, lambda: process.start(project_path, config, folds=folds),
                         lambda event: _show_check_event(event, bar), bar, "label check")


def _show_check_event(event: Event, bar: ProgressBar) -> JobEnd | None:
    """Draw one event of the label check; return it when it ends the check."""
    if event["event"] == "started":
        print(f"label check {event.get('check_id')} on {event.get('device_label')}: "
              f"{event.get('examples')} accepted annotations in {event.get('folds')} folds",
              file=sys.stderr)
    elif event["event"] == "fold":
        bar.finish_line()
        print(f"fold {event.get('fold')}/{event.get('folds')}: training on "
              f"{event.get('train_examples')}, checking {event.get('held_out')}",
              file=sys.stderr)
    elif event["event"] == "progress":
        bar.update(event)
    elif is_end(event):
        return event
    return None


def cmd_check_labels(args: argparse.Namespace) -> int:
    _registry()
    project = _open(args.project)
    path = project.path
    project.close()
    final = _run_label_check(path, _train_config(args), args.folds)
    kind = final.get("event")
    if kind == "cancelled":
        print("label check cancelled; no issues were stored", file=sys.stderr)
        return EXIT_CANCELLED
    if final["event"] != "finished" or "check_id" not in final:
        raise AnnotuneError(f"the label check failed: {final.get('error')}",
                            hint=f"details in {final.get('log')}" if final.get("log") else None)
    with _open(str(path)) as project:
        issues = project.label_issues(final["check_id"], limit=args.top)
        title = project.task.title
    print(f"label check {final['check_id']}: {final.get('suspects', 0)} of "
          f"{final.get('issues', 0)} annotations look wrong ({title}); most suspect first:")
    rows = [[str(i["example_id"]), f"{i['score']:.3f}", _short(i["given"]),
             _short(i["suggestion"]) if i["suggestion"] is not None else "-"] for i in issues]
    for line in format_table(["example", "score", "given", "suggested"], rows,
                             [True, True, False, False]):
        print(line)
    return EXIT_OK


def _short(annotation: object, width: int = 60) -> str:
    text = json.dumps(annotation, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[:width - 1] + "…"


RUNS_METRIC_COLUMNS = 5  # more metrics than this: the rest are in --json


def format_number(value: object) -> str:
    """Format a figure for a table: integers as integers, fractions with four decimals."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):  # counts (entities found, questions scored) stay whole
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def format_seconds(seconds: object) -> str:
    """Return e.g. ``42 s``, ``3 min 10 s``, ``1 h 02 min`` ('' when unknown)."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return ""
    whole = int(round(seconds))
    if whole >= 3600:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    if whole >= 60:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole} s"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                 right: Sequence[bool]) -> list[str]:
    """Return aligned lines: a header, then one line per row (numbers right-aligned)."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.rjust(w) if r else cell.ljust(w)
                         for cell, w, r in zip(cells, widths, right, strict=True)).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def runs_table(runs: Sequence[dict], task: Any = None) -> list[str]:
    """Return the `annotune runs` table: one aligned line per run, its main metric first."""
    from annotune.core.display_names import metric_title, status_title

    main = getattr(task, "main_metric", None)
    keys: list[str] = [main] if main else []
    for run in runs:
        keys += [k for k, v in (run.get("metrics") or {}).items()
                 if isinstance(v, int | float) and not isinstance(v, bool) and k not in keys]
    shown = keys[:RUNS_METRIC_COLUMNS]
    headers = ["Run", "Status", "Started", "Device", "Epochs",
               *(metric_title(k, task) for k in shown), "Time"]
    rows = []
    for run in runs:
        metrics = run.get("metrics") or {}
        config = run.get("config") or {}
        device = str(run.get("device") or "").split(" ")[0]
        rows.append([str(run["id"]), status_title(run.get("status")).lower(),
                     str(run.get("created") or "")[:16].replace("T", " "), device,
                     format_number(config.get("epochs")),
                     *(with_error(metrics.get(k), metrics, k) for k in shown),
                     format_seconds(run.get("duration_s"))])
    right = [True, False, False, False, True, *([True] * len(shown)), True]
    lines = format_table(headers, rows, right)
    if len(keys) > len(shown):
        more = len(keys) - len(shown)
        lines.append(f"({more} more metric{'s' if more != 1 else ''} with --json)")
    lines += [f"run {run['id']} {run.get('status')}: {run['error']}" for run in runs
              if run.get("error")]
    return lines


def cmd_runs(args: argparse.Namespace) -> int:
    project = _open(args.project)
    runs = project.runs()
    if args.json:
        _print_json(runs)
        return EXIT_OK
    if not runs:
        print(f"no runs yet: annotune train {args.project}")
        return EXIT_OK
    try:
        task = _registry().task(project.task_name)
    except AnnotuneError:  # a task whose plugin is gone: the table still lists the runs
        task = None
    print("\n".join(runs_table(runs, task)))
    return EXIT_OK


# -- learning curve --------------------------------------------------------------------------
def cmd_learning_curve(args: argparse.Namespace) -> int:
    from annotune.core.extras import require_for_command
    from annotune.core.training.learning_curve_job import LearningCurveProcess, source_run

    require_for_command("train")  # each point is a training, in a child process
    registry = _registry()
    project = _open(args.project)
    path, run_id = project.path, source_run(project, args.run)["id"]
    task = registry.task(project.task_name)
    project.close()
    process = LearningCurveProcess()
    final = _follow_learning_curve(process, lambda: process.start_curve(path, run_id), task)
    kind = final.get("event")
    if kind == "cancelled":
        print("learning curve stopped; nothing was stored", file=sys.stderr)
        return EXIT_CANCELLED
    if final["event"] != "finished" or "curve" not in final:
        if final.get("busy"):
            raise AnnotuneError(str(final.get("error")))
        raise AnnotuneError(f"learning curve failed: {final.get('error')}",
                            hint=f"details in {final.get('log')}" if final.get("log") else None)
    if args.json:
        _print_json({**final["curve"], "verdict": _curve_verdict(final["curve"], task)})
    else:
        print("\n".join(learning_curve_lines(final["curve"], task)))
        print(f"stored in {final.get('path')}")
    return EXIT_OK


def _curve_verdict(curve: dict, task: Any) -> dict:
    from annotune.core.display_names import metric_title
    from annotune.core.learning_curve import verdict

    return verdict(curve, metric_title(curve.get("main_metric", ""), task))


def learning_curve_lines(curve: dict, task: Any = None) -> list[str]:
    """Return the learning curve as an aligned table and the sentence that reads it."""
    from annotune.core.display_names import metric_title

    metric = metric_title(curve.get("main_metric", ""), task)
    rows = [[f"{point['labels']:,}", f"{round(point['fraction'] * 100):g} %",
             format_number(point.get("score")),
             f"{format_number(point.get('low'))}–{format_number(point.get('high'))}"
             if point.get("low") is not None else ""]
            for point in curve.get("points", [])]
    headers = ["Labels", "Share", metric, f"{curve.get('interval', 95)} % interval"]
    said = _curve_verdict(curve, task)
    return [*format_table(headers, rows, [True, True, True, False]), said["sentence"],
            f"({said['detail']})"]


def _follow_learning_curve(process: Any, start: Any, task: Any) -> JobEnd:
    """Start the learning-curve child, draw its progress; return its final event.

    Ctrl-C asks it to stop (within about 3 s); a second Ctrl-C kills it at once.
    """
    from annotune.core.display_names import metric_title

    bar = ProgressBar()
    started = time.monotonic()
    metric = metric_title(task.main_metric, task)

    def show(event: Event) -> JobEnd | None:
        if event["event"] == "started" and "source_run" in event:
            sizes = ", ".join(f"{n:,}" for n in event.get("labels", []))
            print(f"learning curve of run {event.get('source_run')} on "
                  f"{event.get('device_label')}: training on {sizes} labeled examples, "
                  f"scored on the same {event.get('validation_examples')} validation "
                  "examples", file=sys.stderr)
        elif event["event"] == "progress":
            done = float(event.get("done") or 0.0)
            elapsed = time.monotonic() - started
            bar.draw(round(done * 1000), 1000,
                     f"{round(event.get('fraction', 0.0) * 100):g} % of the labels "
                     f"({event.get('index', 0) + 1}/{event.get('points', '?')}), "
                     f"epoch {event.get('epoch')}",
                     elapsed / done * (1 - done) if done > 0.02 else None)
        elif event["event"] == "point":
            bar.finish_line()
            print(f"{round(event['fraction'] * 100):g} % of the labels ({event['labels']:,}):"
                  f" {metric} {format_number(event.get('score'))}", file=sys.stderr)
        elif is_end(event):
            return event
        return None

    return _follow_child(process, start, show, bar, "learning curve",
                         kept_after_stop=("finished", "cancelled"))


# -- export and inference ---------------------------------------------------------------------
def _run_dir(args: argparse.Namespace) -> Path:
    source = Path(args.source)
    if (source / "run.json").exists():
        return source
    project = _open(args.source)
    runs = [r for r in project.runs() if r["status"] == "finished"]
    if args.run is not None:
        runs = [r for r in runs if r["id"] == args.run]
    if not runs:
        raise AnnotuneError("no finished training run to export", where=str(source),
                            hint="train one with `annotune train PROJECT`, or pick one with --run")
    return Path(runs[-1]["artifact_dir"])


def cmd_export(args: argparse.Namespace) -> int:
    from annotune.core.export import export_run

    _registry()
    report = export_run(_run_dir(args), Path(args.output), quantize=args.int8)
    print(report)
    return EXIT_OK


PREDICT_INPUT = "a text file (one text or JSON object per line)"


def _read_input(source: str) -> tuple[str, str]:
    """Return the text of a predict input and the name errors give it (a path or <stdin>).

    Bytes are decoded by annotune, not by Python's stdin: with a C or POSIX locale Python
    turns bytes that are not UTF-8 into lone surrogates instead of failing, and the error
    would surface far away, in the tokenizer.
    """
    from annotune.core.formats import files

    if source != "-":
        return files.read_utf8(Path(source), PREDICT_INPUT), source
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream put in place of stdin (tests, embedding programs)
        return sys.stdin.read(), "<stdin>"
    return files.decode_text(buffer.read(), "<stdin>", PREDICT_INPUT), "<stdin>"


def _read_items(source: str, fields: Sequence[str]) -> list:
    """Read texts (one per line) or JSON objects with the task's fields (JSON lines).

    Every problem names its line: invalid JSON, a missing field, text that is not text.
    """
    from annotune.core.formats import files

    text, name = _read_input(source)
    items = []
    example = '{"' + '": "...", "'.join(fields) + '": "..."}'
    for number, line in enumerate(files.split_lines(text), 1):
        where = f"{name}:{number}"
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                item = json.loads(line)
            except json.JSONDecodeError as error:
                raise AnnotuneError(f"invalid JSON: {error.msg} (column {error.colno})",
                                    where=where,
                                    hint="give one text per line or one JSON object per line"
                                    ) from None
            missing = [f for f in fields if not isinstance(item.get(f), str)]
            if missing:
                found = ", ".join(item) or "none"
                raise AnnotuneError(f"the JSON object has no text under '{missing[0]}' (keys: "
                                    f"{found})", where=where,
                                    hint=f"this model reads {', '.join(fields)}, e.g. {example}")
            texts = {f: item[f] for f in fields}
        elif len(fields) > 1:
            raise AnnotuneError(f"this model needs the fields {', '.join(fields)}", where=where,
                                hint=f"give one JSON object per line, e.g. {example}")
        else:
            item = line
            texts = {fields[0]: line}
        for field, value in texts.items():
            index = files.lone_surrogate(value)
            if index is not None:
                raise AnnotuneError(files.surrogate_message(value, index),
                                    where=f"{where} (field '{field}')", hint=files.SURROGATE_HINT)
        items.append(item)
    return items


def cmd_predict(args: argparse.Namespace) -> int:
    from annotune.core.inference import Predictor

    predictor = Predictor(Path(args.bundle), batch_size=args.batch_size)
    items = _read_items(args.input, predictor.task.fields)
    # JSON escapes keep every character when stdout cannot encode it (PYTHONIOENCODING=latin-1,
    # an old Windows console): the lines stay valid JSON instead of failing on the first emoji.
    ascii_only = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "") != "utf8"
    for item, prediction in zip(items, predictor.predict(items), strict=True):
        record = {"input": item, **prediction}
        print(json.dumps(record, ensure_ascii=ascii_only))
    return EXIT_OK


def cmd_preannotate(args: argparse.Namespace) -> int:
    from annotune.core.preannotate import preannotate

    _registry()
    started = time.perf_counter()
    bar = ProgressBar()

    def progress(done: int, total: int) -> bool:
        seconds = time.perf_counter() - started
        rate = done / seconds if seconds > 0 else 0.0
        bar.draw(done, total, f"{rate:,.0f} examples/s",
                 (total - done) / rate if rate > 0 else None)
        return True

    # Ctrl-C stops it; the pages already stored stay (each page is its own transaction).
    count = preannotate(_open(args.project), Path(args.bundle),
                        only_unlabeled=not args.all_examples, progress=progress)
    bar.finish_line()
    seconds = time.perf_counter() - started
    print(f"stored predictions for {count} examples in {seconds:.1f} s "
          f"({count / seconds if seconds > 0 else 0:,.0f} examples/s)")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from annotune.core.serve.limits import ServeLimits
    from annotune.core.serve.server import serve

    limits = ServeLimits(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                         max_queue=args.max_queue, max_body_bytes=args.max_body_bytes,
                         max_items=args.max_items, max_connections=args.max_connections,
                         graceful_timeout_s=args.graceful_timeout)
    serve(Path(args.bundle), host=args.host, port=args.port, limits=limits,
          threads=args.threads, access_log=args.access_log)
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    found = _registry()
    for task in sorted(found.tasks.values(), key=lambda t: t.name):
        print(f"task    {task.name:<24} {task.title}")
    for name in sorted(found.importers):
        print(f"import  {name:<24} {found.importers[name].title}")
    for name in sorted(found.exporters):
        print(f"export  {name:<24} {found.exporters[name].title}")
    for failure in found.failures:
        print(f"broken  {failure.name:<24} {failure.error}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from annotune.core.demo import run_demo

    return run_demo(Path(args.dir), gui=args.gui, train=_run_training)


# -- parser ----------------------------------------------------------------------------------
class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Show every option's default in --help, unless its help already says it.

    Like argparse's ArgumentDefaultsHelpFormatter, without its noise: a flag's default (off),
    None and an empty list say nothing a person needs, so options whose default depends on
    something else name it in their own help text instead.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not text or "default" in text or default in (None, False, argparse.SUPPRESS)
                or default == [] or action.nargs == 0):
            return text
        return f"{text} (default: %(default)s)"


class HelpfulParser(argparse.ArgumentParser):
    """An ArgumentParser whose --help shows defaults; every subcommand is one (plugins' too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


# Options written out above with their own help; every other TrainConfig field becomes an
# option by itself (as the train panel's Advanced section does), so a new training setting
# reaches the command line without a change here.
_WRITTEN_TRAIN_OPTIONS = {"base_model", "epochs", "learning_rate", "batch_size", "max_length",
                          "seed", "device", "freeze_encoder"}
_COMPILE_CHOICES = {"auto": "auto", "on": True, "off": False}


def _add_train_options(parser: argparse.ArgumentParser,
                       freeze_help: str = "train only the classification head (fast, weaker; "
                                          "for tiny data)") -> None:
    from dataclasses import fields

    from annotune.core.display_names import OPTION_DESCRIPTIONS
    from annotune.core.training.config import DEVICES, PRECISIONS, TrainConfig

    # the defaults are TrainConfig's own, so --help shows what a run will use
    defaults = TrainConfig()
    parser.add_argument("--base-model", help="hub id or local folder (default: the project's "
                                             "base model)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help="passes over the training data; the best epoch is kept and "
                             f"training stops after {defaults.early_stopping_patience} epochs "
                             "without a better validation score")
    parser.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate",
                        default=defaults.learning_rate, help="peak learning rate of AdamW")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="examples per optimizer step")
    parser.add_argument("--max-length", type=int,
                        help="longest input in tokens; longer texts are cut into windows "
                             "(default: the project's setting)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="random seed (same seed, data and machine: same model)")
    parser.add_argument("--device", choices=DEVICES, default=defaults.device,
                        help="auto: the GPU when there is one, else the CPU")
    parser.add_argument("--freeze-encoder", action="store_true", help=freeze_help)
    for item in fields(TrainConfig):
        if item.name in _WRITTEN_TRAIN_OPTIONS:
            continue
        value = getattr(defaults, item.name)
        flag = "--" + item.name.replace("_", "-")
        described = OPTION_DESCRIPTIONS.get(item.name, item.name.replace("_", " "))
        if item.name == "precision":
            parser.add_argument(flag, choices=PRECISIONS, default=value,
                                help="auto: bf16 or fp16 where measured faster, else fp32")
        elif item.name == "compile":
            parser.add_argument(flag, choices=sorted(_COMPILE_CHOICES), default="auto",
                                type=str.lower, help="torch.compile the model")
        elif isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value,
                                help=described)
        elif isinstance(value, int | float):
            parser.add_argument(flag, type=type(value), default=value, help=described)


_OPTION_PREFIX = "task_option_"  # argparse dest of a task option: task_option_<name>


def _add_task_options(parser: argparse.ArgumentParser) -> None:
    """Offer every option the installed tasks declare (Task.options), each once.

    A name declared by several tasks is one flag; whether the chosen task takes it is
    checked when the project is created (cmd_init), where the task is known.
    """
    from annotune.core import plugins

    declared: dict[str, list[tuple[Any, Any]]] = {}
    for task in sorted(plugins.registry().tasks.values(), key=lambda t: t.name):
        for option in task.options:
            declared.setdefault(option.name, []).append((task, option))
    for name, pairs in declared.items():
        option = pairs[0][1]
        tasks = ", ".join(task.name for task, _ in pairs)
        help_text = f"{option.help_text} [{tasks}]".replace("%", "%%")
        dest = _OPTION_PREFIX + name
        try:
            if all(item.type is bool for _, item in pairs):
                parser.add_argument(option.flag, dest=dest, default=None, help=help_text,
                                    action=argparse.BooleanOptionalAction)
            else:
                metavar = "|".join(option.choices) if option.choices else name.upper()
                parser.add_argument(option.flag, dest=dest, default=None, metavar=metavar,
                                    help=help_text)
        except argparse.ArgumentError:  # a plugin's option named like a flag of init itself
            print(f"warning: the option {name} of {tasks} is not offered: {option.flag} is "
                  "one of init's own flags", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = HelpfulParser(
        prog="annotune", description="Label text, fine-tune an encoder, export an offline model.")
    parser.add_argument("--version", action="version", version=f"annotune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=HelpfulParser)

    p = commands.add_parser("init", help="create a project file")
    p.add_argument("project", help="the .annotune file to create")
    p.add_argument("--task", default="text-classification",
                   help="text-classification, pair-classification, token-classification, "
                        "question-answering (see `annotune plugins`)")
    p.add_argument("--labels", help="comma-separated labels (entity types for NER) "
                                    "(default: none, as question answering needs)")
    p.add_argument("--base-model", help="hub id or local folder (default: the bundled "
                                        "all-MiniLM-L6-v2)")
    p.add_argument("--max-length", type=int,
                   help="longest input in tokens (default: the task's, 384 for question "
                        "answering, 128 for the others)")
    p.add_argument("--stride", type=int,
                   help="tokens shared by the windows of a long text (default: the task's, "
                        "128)")
    _add_task_options(p)  # after init's own flags: a plugin's option cannot take one of them
    p.set_defaults(func=cmd_init)

    p = commands.add_parser("import", help="import examples (and labels) from a file")
    p.add_argument("project", help="the .annotune project file")
    p.add_argument("file", help="CSV, TSV, JSONL, TXT, CoNLL or SQuAD file")
    p.add_argument("--format", help="csv, tsv, jsonl, txt, conll, squad, ... (default: by suffix)")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help="which column feeds a field (text, text_pair, label, split, id); "
                        "repeat it for several (default: columns named like the fields)")
    p.add_argument("--split", choices=("train", "validation", "test"),
                   help="put every example into this split (default: the file's split "
                        "column, else none)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip and report bad rows instead of importing nothing")
    p.set_defaults(func=cmd_import)

    p = commands.add_parser("export-data", help="write annotations to JSONL/CSV/...")
    p.add_argument("project", help="the .annotune project file")
    p.add_argument("output", help="the file to write")
    p.add_argument("--format", help="jsonl, csv, conll, squad, ... (default: by suffix)")
    p.add_argument("--include-skipped", action="store_true",
                   help="also write examples marked as skipped")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(func=cmd_export_data)

    p = commands.add_parser("stats", help="counts of examples, labels and splits")
    p.add_argument("project", help="the .annotune project file")
    p.set_defaults(func=cmd_stats)

    p = commands.add_parser("labels", help="list the labels (with counts); add new ones",
                            description="List the project's labels, their number keys in the "
                            "labeling view and how many examples have each. --add appends "
                            "labels (entity types for NER); every stored label is kept.")
    p.add_argument("project", help="the .annotune project file")
    p.add_argument("--add", action="append", metavar="LABEL[,LABEL]",
                   help="add labels after the existing ones, repeatable (default: none, the "
                        "labels are listed)")
    p.set_defaults(func=cmd_labels)

    p = commands.add_parser("backup", help="copy a project safely, even while it is open",
                            description="Copy the project through SQLite's backup API: every "
                            "saved label, also while another program has it open. DESTINATION "
                            "is written under a temporary name and renamed when complete.")
    p.add_argument("project")
    p.add_argument("destination", help="the copy to create (refused if it exists)")
    p.add_argument("--force", action="store_true", help="replace DESTINATION if it exists")
    p.set_defaults(func=cmd_backup)

    p = commands.add_parser("train", help="fine-tune on the project's annotations")
    p.add_argument("project", help="the .annotune project file")
    _add_train_options(p)
    p.add_argument("--prepare-only", metavar="RUN_DIR",
                   help="do not train: write the run (settings and a snapshot of the labeled "
                        "examples) into the new folder RUN_DIR, for `torchrun "
                        "--nproc-per-node N -m annotune.core.training.job RUN_DIR` or "
                        "accelerate launch (see docs/distributed.md); default: train now, here")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("record-run",
                            help="record a run trained from a prepared folder in the project")
    p.add_argument("project", help="the .annotune project file the run was prepared from")
    p.add_argument("run_dir", help="the run folder (from train --prepare-only)")
    p.set_defaults(func=cmd_record_run)
    from annotune.core.label_check import CHECK_EPOCHS, DEFAULT_FOLDS

    p = commands.add_parser("check-labels", help="find annotations that are probably wrong "
                                                 "(k-fold cross-validation)")
    p.add_argument("project", help="the .annotune project file")
    p.add_argument("--folds", type=int, default=DEFAULT_FOLDS,
                   help="models trained; each example is checked by the one that never saw it")
    p.add_argument("--top", type=int, default=20, help="suspects printed (all are stored)")
    _add_train_options(p, freeze_help="the fast check: the encoder stays as it is and each fold "
                                      "fits small heads on its layers' pooled states (seconds "
                                      "instead of a fine-tuning per fold)")
    p.set_defaults(func=cmd_check_labels, epochs=CHECK_EPOCHS)

    p = commands.add_parser("runs", help="list training runs")
    p.add_argument("project", help="the .annotune project file")
    p.add_argument("--json", action="store_true",
                   help="print every run with all its metrics as JSON")
    p.set_defaults(func=cmd_runs)

    p = commands.add_parser(
        "learning-curve", help="whether labeling more is worth it: a run retrained on "
                               "25/50/75/100 %% of the labels")
    p.add_argument("project", help="the .annotune project file")
    p.add_argument("--run", type=int,
                   help="the finished run whose settings are retrained (default: the newest "
                        "finished run)")
    p.add_argument("--json", action="store_true", help="print the curve as JSON")
    p.set_defaults(func=cmd_learning_curve)

    p = commands.add_parser("export", help="export a run as an ONNX bundle")
    p.add_argument("source", help="project file (latest finished run) or a run folder")
    p.add_argument("output", help="bundle folder to create")
    p.add_argument("--run", type=int, help="run id (default: the latest finished run)")
    p.add_argument("--int8", action="store_true",
                   help="dynamic int8 quantization: about 4x smaller and faster on CPUs; "
                        "the report says what it costs on validation data")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("predict", help="predict with a bundle; writes JSON lines")
    p.add_argument("bundle", help="the bundle folder")
    p.add_argument("input", nargs="?", default="-",
                   help="file with one text (or JSON object) per line; - for stdin")
    p.add_argument("--batch-size", type=int, default=32, help="texts per onnxruntime call")
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser("preannotate", help="store a bundle's predictions in the project")
    p.add_argument("project", help="the .annotune project file")
    p.add_argument("bundle", help="the bundle folder")
    p.add_argument("--all-examples", action="store_true",
                   help="also labeled examples (default: unlabeled ones only)")
    p.set_defaults(func=cmd_preannotate)

    _add_serve_parser(commands)

    p = commands.add_parser("plugins", help="installed tasks and formats, and broken plugins")
    p.set_defaults(func=cmd_plugins)

    p = commands.add_parser("demo", help="build, train and export a demo project")
    p.add_argument("--dir", default="demo-project", help="folder for the demo")
    p.add_argument("--gui", choices=("auto", "yes", "no"), default="auto",
                   help="open the desktop app at the end (auto: when a display is available)")
    p.set_defaults(func=cmd_demo)

    _add_plugin_commands(commands)
    return parser


def _add_serve_parser(commands: argparse._SubParsersAction) -> None:
    # the defaults are ServeLimits' own (a module without starlette or uvicorn)
    from annotune.core.serve.limits import ServeLimits

    limits = ServeLimits()
    p = commands.add_parser("serve", help="serve a bundle over HTTP (needs annotune[serve])",
                            description="Serve a bundle's predictions over HTTP: POST /predict "
                                        "with JSON, GET /health, /metadata, /openapi.json.")
    p.add_argument("bundle", help="the bundle folder")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; anything but loopback lets other machines in")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one)")
    p.add_argument("--threads", type=int,
                   help="onnxruntime threads (default: the Predictor's, see docs/serving.md)")
    p.add_argument("--max-batch", type=int, default=limits.max_batch,
                   help="inputs of concurrent requests predicted in one call at most")
    p.add_argument("--max-wait-ms", type=float, default=limits.max_wait_ms,
                   help="how long a batch waits for more requests, in milliseconds")
    p.add_argument("--max-queue", type=int, default=limits.max_queue,
                   help="inputs that may wait at once; more are refused with 429")
    p.add_argument("--max-items", type=int, default=limits.max_items,
                   help="inputs per request; more are refused with 413")
    p.add_argument("--max-body-bytes", type=int, default=limits.max_body_bytes,
                   help="request body size; larger bodies are refused with 413")
    p.add_argument("--max-connections", type=int, default=limits.max_connections,
                   help="connections and requests at once; more are refused with 503")
    p.add_argument("--graceful-timeout", type=float, default=limits.graceful_timeout_s,
                   help="seconds a stop waits for requests in flight")
    p.add_argument("--access-log", action="store_true", help="log every request on stdout")
    p.set_defaults(func=cmd_serve)


def _add_plugin_commands(commands: argparse._SubParsersAction) -> None:
    from annotune.core.plugins import registry

    try:
        registry().manager.hook.register_commands(cli=commands)
    except Exception as error:  # a broken command plugin must not take the CLI down
        print(f"warning: a plugin failed to add its commands: {error}", file=sys.stderr)


class ProgressBar:
    """A one-line progress bar on stderr (training steps, pre-annotated examples)."""

    def __init__(self, width: int = 30):
        self.width = width
        self.drawn = False

    def update(self, event: Progress) -> None:
        """Draw a training progress event."""
        loss = event.get("loss")
        loss_text = f"loss {loss:.4f}" if isinstance(loss, int | float) else ""
        self.draw(event.get("step", 0), event.get("total_steps", 1),
                  f"epoch {event.get('epoch', '?')} {loss_text}", event.get("eta_s"))

    def draw(self, done: int, total: int, detail: str, eta: float | None) -> None:
        """Draw ``done`` of ``total`` with a detail and the time left (None: unknown)."""
        filled = int(self.width * done / max(total, 1))
        eta_text = f"{int(eta) // 60}:{int(eta) % 60:02d}" if eta is not None else "?"
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
                         f"{detail} eta {eta_text}")
        sys.stderr.flush()
        self.drawn = True

    def finish_line(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            self.drawn = False


def _stdout_closed() -> bool:
    """Say whether nobody reads stdout any more (a pipe whose reader, such as head, exited)."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is no file
        return True  # the usual cause; nothing better can be told


def _quiet_stdout() -> None:
    """Point stdout at the null device, so the flush at exit cannot fail again.

    The recipe of Python's signal documentation: Python ignores SIGPIPE, so a closed pipe
    is a BrokenPipeError on the next write, and once more when the interpreter flushes.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the annotune command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from annotune.core.extras import require_for_command

        require_for_command(args.command)  # a child process would fail less clearly
        code = args.func(args)
        sys.stdout.flush()  # a reader that went away shows here, inside this handler
        return code
    except BrokenPipeError as error:
        if not _stdout_closed():
            return _unexpected(args, error)
        _quiet_stdout()  # like other Unix tools: no message, no traceback
        return EXIT_CLOSED_PIPE
    except AnnotuneError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except UnicodeEncodeError as error:
        if error.reason != "surrogates not allowed" or args.debug:
            return _unexpected(args, error)
        # Text that reached annotune from bytes in another encoding (an argument typed in a
        # Latin-1 terminal, a file name) cannot be stored or tokenized: say so, not "unexpected".
        shown = error.object[max(0, error.start - 20):error.end + 20]
        shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
        print(f"error: text that is not valid Unicode reached annotune: '...{shown}...' holds "
              f"a lone surrogate U+{ord(error.object[error.start]):04X} — it came from bytes "
              "that are not UTF-8 (an argument or a file name typed in another encoding): "
              "give it as UTF-8", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:
        return _unexpected(args, error)


def _unexpected(args: argparse.Namespace, error: Exception) -> int:
    if args.debug:
        raise error
    from annotune.core.extras import missing_extra

    known = missing_extra(error)  # a module of an extra this install lacks
    if known is not None:
        print(f"error: {known}", file=sys.stderr)
        return EXIT_ERROR
    print(f"error: unexpected {type(error).__name__}: {error} (run with --debug for the "
          "traceback and report it)", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
