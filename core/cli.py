"""The command line: parses arguments, calls core, prints. User errors become exit codes.

Heavy modules (torch, transformers, onnxruntime) are imported inside the commands that need
them, so `annotune --help` and `annotune predict` start quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from annotune.core import __version__
from annotune.core.errors import AnnotuneError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


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
    if args.multi_label and not task.supports_multi_label:
        raise AnnotuneError(f"the {task.title} task has no multi-label mode",
                            hint="drop --multi-label")
    settings = task.default_settings().with_(labels=labels, multi_label=args.multi_label,
                                             allow_unanswerable=args.allow_unanswerable)
    overrides = {k: v for k, v in (("max_length", args.max_length), ("stride", args.stride))
                 if v is not None}
    settings = settings.with_(**overrides)
    task.check_settings(settings)
    project = Project.create(Path(args.project), task=task.name, settings=settings,
                             base_model=args.base_model)
    print(f"created {project.path} ({task.title}; labels: {', '.join(labels) or 'none'})")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from annotune.core.formats.base import ImportOptions
    from annotune.core.formats.importing import import_file

    _registry()
    project = _open(args.project)
    options = ImportOptions(mapping=_parse_mapping(args.map), skip_bad_rows=args.skip_bad_rows,
                            split=args.split)
    report = import_file(project, Path(args.file), format=args.format, options=options)
    for skipped in getattr(report, "skipped", []):
        print(f"skipped {skipped}", file=sys.stderr)
    print(report)
    return EXIT_OK


def cmd_export_data(args: argparse.Namespace) -> int:
    from annotune.core.formats.importing import export_data

    _registry()
    count = export_data(_open(args.project), Path(args.output), format=args.format,
                        include_skipped=args.include_skipped)
    print(f"wrote {count} annotated examples to {args.output}")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    _registry()
    project = _open(args.project)
    stats = project.stats()
    stats = {"task": project.task_name, "labels": list(project.settings.labels), **stats}
    _print_json(stats)
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


# -- training --------------------------------------------------------------------------------
def _train_config(args: argparse.Namespace):
    from annotune.core.training.config import TrainConfig

    values = {"base_model": args.base_model, "epochs": args.epochs,
              "learning_rate": args.learning_rate, "batch_size": args.batch_size,
              "seed": args.seed, "device": args.device, "max_length": args.max_length}
    if args.freeze_encoder:
        values["freeze_encoder"] = True
    return TrainConfig.from_dict({k: v for k, v in values.items() if v is not None})


def _run_training(project_path: Path, config) -> dict:
    """Run the training job in its child process, drawing progress; return the final event."""
    from annotune.core.training.job import TrainingProcess

    process = TrainingProcess()
    process.start(project_path, config)
    bar = ProgressBar()
    final: dict = {"event": "failed", "error": "the training process ended without a result"}
    try:
        for event in process.events():
            kind = event.get("event")
            if kind == "started":
                print(f"training run {event.get('run_id')} on {event.get('device_label')}: "
                      f"{event.get('train_examples', '?')} training and "
                      f"{event.get('validation_examples', '?')} validation examples",
                      file=sys.stderr)
            elif kind == "progress":
                bar.update(event)
            elif kind in ("precision", "memory"):  # the measured precision, a smaller batch
                bar.finish_line()
                print(event.get("message", ""), file=sys.stderr)
            elif kind == "metrics":
                bar.finish_line()
                metrics = event.get("metrics", {})
                shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                                  if isinstance(v, int | float))
                print(f"epoch {event.get('epoch')}: {shown}", file=sys.stderr)
            elif kind in ("finished", "failed", "cancelled"):
                final = event
    except KeyboardInterrupt:
        bar.finish_line()
        print("stopping…", file=sys.stderr)
        process.stop()
        for event in process.events():
            if event.get("event") in ("finished", "failed", "cancelled"):
                final = event
        if final.get("event") != "cancelled":
            final = {"event": "cancelled"}
    bar.finish_line()
    return final


def cmd_train(args: argparse.Namespace) -> int:
    _registry()
    project = _open(args.project)
    path = project.path
    project.close()
    final = _run_training(path, _train_config(args))
    kind = final.get("event")
    if kind == "finished":
        print(f"run {final.get('run_id')} finished: {final.get('artifact_dir')}")
        return EXIT_OK
    if kind == "cancelled":
        print("training cancelled; the run is recorded as cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    raise AnnotuneError(f"training failed: {final.get('error')}",
                        hint=f"details in {final['log']}" if final.get("log") else None)


def cmd_runs(args: argparse.Namespace) -> int:
    project = _open(args.project)
    runs = project.runs()
    if args.json:
        _print_json(runs)
        return EXIT_OK
    if not runs:
        print("no runs yet: annotune train PROJECT")
    for run in runs:
        metrics = run.get("metrics") or {}
        main = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                         if isinstance(v, int | float))
        print(f"{run['id']:>4}  {run['status']:<9}  {run.get('created', '')}  "
              f"{run.get('device') or '':<6}  {main}")
    return EXIT_OK


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


def _read_items(source: str, fields: Sequence[str]) -> list:
    """Read texts (one per line) or JSON objects with the task's fields (JSON lines)."""
    stream = sys.stdin if source == "-" else open(source, encoding="utf-8-sig")  # noqa: SIM115
    items = []
    with stream:
        for number, line in enumerate(stream, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise AnnotuneError(f"invalid JSON: {error.msg}", where=f"{source}:{number}",
                                        hint="give one text per line or one JSON object per line"
                                        ) from None
            elif len(fields) > 1:
                raise AnnotuneError(f"this model needs the fields {', '.join(fields)}",
                                    where=f"{source}:{number}",
                                    hint='give one JSON object per line, e.g. {"'
                                         + '": "...", "'.join(fields) + '": "..."}')
            else:
                items.append(line)
    return items


def cmd_predict(args: argparse.Namespace) -> int:
    from annotune.core.inference import Predictor

    predictor = Predictor(Path(args.bundle), batch_size=args.batch_size)
    items = _read_items(args.input, predictor.task.fields)
    for item, prediction in zip(items, predictor.predict(items), strict=True):
        record = {"input": item, **prediction}
        print(json.dumps(record, ensure_ascii=False))
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
def _add_train_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-model", help="hub id or local folder (default: the project's)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--freeze-encoder", action="store_true",
                        help="train only the classification head")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="annotune", description="Label text, fine-tune an encoder, export an offline model.")
    parser.add_argument("--version", action="version", version=f"annotune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("init", help="create a project file")
    p.add_argument("project")
    p.add_argument("--task", default="text-classification",
                   help="text-classification, pair-classification, token-classification, "
                        "question-answering (see `annotune plugins`)")
    p.add_argument("--labels", help="comma-separated labels (entity types for NER)")
    p.add_argument("--multi-label", action="store_true")
    p.add_argument("--allow-unanswerable", action="store_true", help="QA: SQuAD v2 style")
    p.add_argument("--base-model", help="hub id or local folder (default: bundled MiniLM)")
    p.add_argument("--max-length", type=int)
    p.add_argument("--stride", type=int)
    p.set_defaults(func=cmd_init)

    p = commands.add_parser("import", help="import examples (and labels) from a file")
    p.add_argument("project")
    p.add_argument("file")
    p.add_argument("--format", help="csv, tsv, jsonl, txt, conll, squad, ... (default: by suffix)")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help="which column feeds a field (text, text_pair, label, split, id)")
    p.add_argument("--split", choices=("train", "validation", "test"))
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip and report bad rows instead of importing nothing")
    p.set_defaults(func=cmd_import)

    p = commands.add_parser("export-data", help="write annotations to JSONL/CSV/...")
    p.add_argument("project")
    p.add_argument("output")
    p.add_argument("--format", help="jsonl, csv, conll, squad, ... (default: by suffix)")
    p.add_argument("--include-skipped", action="store_true")
    p.set_defaults(func=cmd_export_data)

    p = commands.add_parser("stats", help="counts of examples, labels and splits")
    p.add_argument("project")
    p.set_defaults(func=cmd_stats)

    p = commands.add_parser("backup", help="copy a project safely, even while it is open",
                            description="Copy the project through SQLite's backup API: every "
                            "saved label, also while another program has it open. DESTINATION "
                            "is written under a temporary name and renamed when complete.")
    p.add_argument("project")
    p.add_argument("destination", help="the copy to create (refused if it exists)")
    p.add_argument("--force", action="store_true", help="replace DESTINATION if it exists")
    p.set_defaults(func=cmd_backup)

    p = commands.add_parser("train", help="fine-tune on the project's annotations")
    p.add_argument("project")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("runs", help="list training runs")
    p.add_argument("project")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = commands.add_parser("export", help="export a run as an ONNX bundle")
    p.add_argument("source", help="project file (latest finished run) or a run folder")
    p.add_argument("output", help="bundle folder to create")
    p.add_argument("--run", type=int, help="run id (default: the latest finished run)")
    p.add_argument("--int8", action="store_true", help="dynamic int8 quantization")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("predict", help="predict with a bundle; writes JSON lines")
    p.add_argument("bundle")
    p.add_argument("input", nargs="?", default="-",
                   help="file with one text (or JSON object) per line; - for stdin")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser("preannotate", help="store a bundle's predictions in the project")
    p.add_argument("project")
    p.add_argument("bundle")
    p.add_argument("--all-examples", action="store_true", help="also labeled examples")
    p.set_defaults(func=cmd_preannotate)

    p = commands.add_parser("plugins", help="installed tasks and formats, and broken plugins")
    p.set_defaults(func=cmd_plugins)

    p = commands.add_parser("demo", help="build, train and export a demo project")
    p.add_argument("--dir", default="demo-project",
                   help="folder for the demo (default: %(default)s)")
    p.add_argument("--gui", choices=("auto", "yes", "no"), default="auto",
                   help="open the desktop app at the end (auto: when a display is available)")
    p.set_defaults(func=cmd_demo)

    _add_plugin_commands(commands)
    return parser


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

    def update(self, event: dict) -> None:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the annotune command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AnnotuneError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as error:
        if args.debug:
            raise
        print(f"error: unexpected {type(error).__name__}: {error} (run with --debug for the "
              "traceback and report it)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
