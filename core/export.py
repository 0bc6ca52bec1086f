"""Turn a training run into a bundle: ONNX model (+ optional int8), tokenizer.json, manifest.json.

The export is checked before it is kept: PyTorch and onnxruntime run the same padded batch of
mixed-length samples and must agree to 1e-4 at every real position. When the run kept its
validation split (validation.jsonl), the fp32 and int8 bundles are scored on it with the task's
main metric, so the cost of int8 is stated in points of that metric. Everything is written to
a hidden sibling folder that is renamed into place at the end, so a failed export never leaves
a half bundle behind.

torch and transformers are imported inside the functions that need them, so importing this
module (the CLI does, for ``--help``) stays cheap.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annotune.core import bundle as bundle_files
from annotune.core import plugins
from annotune.core.bundle_records import record_bundle
from annotune.core.errors import AnnotuneError
from annotune.core.export_report import ExportReport, validation_lines
from annotune.core.features import (
    MODEL_INPUTS,
    collate,
    pad_id,
    prepare_tokenizer,
)
from annotune.core.fusion import encoder_shape, fuse_encoder
from annotune.core.parity import FP32_TOLERANCE, max_abs_diff, run_batches, run_onnx
from annotune.core.quantize import quantize_bundle_model
from annotune.core.tasks import Feature, Task, TaskSettings
from annotune.core.validation import (
    ValidationReport,
    ValidationScorer,
    ValidationSet,
    read_validation,
)

__all__ = ["ExportReport", "export_run", "read_run", "run_folder", "validation_lines"]

OPSET = 17
FALLBACK_TEXTS = (
    "The delivery arrived two days late and the box was damaged.",
    "Great value.",
    "I would not recommend this to anyone who needs it to work on the first try, "
    "because the setup took an entire afternoon and support never answered my emails.",
    "Maria Lopez moved from Lisbon to Berlin in 2019 to join Siemens.",
    "ok",
    "What time does the museum open on Sundays, and is the entry free for students?",
)


# -- reading the run -------------------------------------------------------------------------

def run_folder(path: Path) -> Path:
    """Return the run folder for a run folder or its model/ checkpoint (what runs record)."""
    if not (path / "run.json").is_file() and (path.parent / "run.json").is_file():
        return path.parent
    return path


def read_run(run_dir: Path) -> dict[str, Any]:
    """Load run.json and check the checkpoint folder beside it."""
    path = run_dir / "run.json"
    if not path.is_file():
        raise AnnotuneError("this folder is not a training run (run.json is missing)",
                            where=str(run_dir), hint="pass a run folder written by annotune train")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotuneError(f"run.json is not valid JSON ({error})", where=str(path)) from None
    if not isinstance(run, dict) or "task" not in run:
        raise AnnotuneError("run.json names no task", where=str(path),
                            hint="pass a run folder written by annotune train")
    model_dir = run_dir / "model"
    if not (model_dir / "config.json").is_file():
        raise AnnotuneError("the run has no saved model (model/config.json is missing)",
                            where=str(run_dir),
                            hint="the run may have been cancelled before its first epoch "
                                 "finished; train again")
    if not (model_dir / "tokenizer.json").is_file():
        raise AnnotuneError("the run's model has no tokenizer.json (a fast tokenizer is needed)",
                            where=str(model_dir),
                            hint="train from a base model that ships tokenizer.json")
    return run


def parity_examples(task: Task, run: Mapping[str, Any],
                    parity_texts: Sequence[str | Mapping[str, str]] | None
                    ) -> list[dict[str, str]]:
    """Return the examples the parity check runs: given texts, the run's samples, or stock text."""
    items: Sequence[Any] = parity_texts or run.get("samples") or ()
    examples = []
    for n, item in enumerate(items):
        if isinstance(item, str):
            examples.append({name: item for name in task.fields})
        elif isinstance(item, Mapping):
            examples.append({name: str(item.get(name, "")) for name in task.fields})
        else:
            raise AnnotuneError(f"parity sample {n} is a {type(item).__name__}, expected a text "
                                "or a mapping of fields")
    if not examples:
        # No samples recorded (an old run): stock sentences still exercise lengths and padding.
        examples = [{name: text for name in task.fields} for text in FALLBACK_TEXTS]
    return examples


# -- PyTorch side ----------------------------------------------------------------------------

def load_model(task: Task, model_dir: Path) -> Any:
    """Load the run's checkpoint as the task's Auto class, fp32, eval mode."""
    import torch
    import transformers

    import annotune.core.training.pooling  # noqa: F401 (registers the pooled classifier type)

    auto_class = getattr(transformers, task.auto_model, None)
    if auto_class is None:
        raise AnnotuneError(f"task '{task.name}' names an unknown model class '{task.auto_model}'",
                            hint="update transformers or the task plugin")
    transformers.utils.logging.disable_progress_bar()  # no loading bars inside our report
    try:
        # Eager attention traces into plain MatMul/Softmax, which every onnxruntime optimises.
        model = auto_class.from_pretrained(str(model_dir), dtype=torch.float32,
                                           attn_implementation="eager")
    except (OSError, ValueError) as error:
        raise AnnotuneError(f"the run's model could not be loaded: {error}",
                            where=str(model_dir)) from error
    return model.float().eval()


def onnx_module(model: Any, output_names: Sequence[str]) -> Any:
    """Wrap a transformers model so forward(input_ids, attention_mask, token_type_ids) -> tuple."""
    import inspect

    import torch

    takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    class OnnxModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if takes_token_types:  # DistilBERT-like models have none; the input stays unused
                inputs["token_type_ids"] = token_type_ids
            output = self.model(**inputs)
            return tuple(output[name] for name in output_names)

    return OnnxModule().eval()


def torch_outputs(module: Any, batch: Mapping[str, np.ndarray], output_names: Sequence[str]
                  ) -> dict[str, np.ndarray]:
    """Run the wrapped model on one numpy batch; return float32 numpy outputs by name."""
    import torch

    module.eval()  # the TorchScript exporter can leave modules in training mode (dropout on)
    with torch.inference_mode():
        values = module(*(torch.from_numpy(batch[name]) for name in MODEL_INPUTS))
    return {name: value.float().numpy() for name, value in zip(output_names, values, strict=True)}


def export_onnx(module: Any, example: Mapping[str, np.ndarray], task: Task, path: Path) -> None:
    """Trace the wrapped model to ONNX with dynamic batch and sequence axes."""
    import torch

    axes_in = {name: {0: "batch", 1: "sequence"} for name in MODEL_INPUTS}
    out_axes = {0: "batch", 1: "sequence"} if task.sequence_outputs else {0: "batch"}
    axes_out = {name: dict(out_axes) for name in task.output_names}
    args = tuple(torch.from_numpy(example[name]) for name in MODEL_INPUTS)
    with warnings.catch_warnings():
        # The TorchScript exporter warns about its own deprecation and about traced Python
        # branches in transformers' masking code; parity below is the real check.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(MODEL_INPUTS), output_names=list(task.output_names),
                          dynamic_axes={**axes_in, **axes_out}, do_constant_folding=True)
    module.eval()


# -- the bundle folder -----------------------------------------------------------------------

def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise AnnotuneError("the export target is a file, not a folder", where=str(out_dir),
                            hint="choose a new folder name for the bundle")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not bundle_files.is_bundle(out_dir):
        raise AnnotuneError("the export folder already exists and is not an annotune bundle; "
                            "refusing to overwrite it", where=str(out_dir),
                            hint="choose a new or empty folder")


def _replace(tmp_dir: Path, out_dir: Path) -> None:
    """Move the finished bundle into place, replacing an older bundle (never other folders)."""
    _check_target(out_dir)
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
        os.replace(out_dir, old / "bundle")
    try:
        os.replace(tmp_dir, out_dir)
    except OSError:
        if old is not None:  # put the previous bundle back rather than leave nothing
            os.replace(old / "bundle", out_dir)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _measure_latency(bundle_dir: Path, examples: Sequence[Mapping[str, str]]) -> float:
    """Return milliseconds per example at batch 1 through the Predictor, tokenizing included."""
    from annotune.core.inference import Predictor

    predictor = Predictor(bundle_dir, batch_size=1)
    predictor.predict(list(examples[:1]))  # warm-up: first run allocates onnxruntime buffers
    started = time.perf_counter()
    for example in examples:
        predictor.predict([example])
    return (time.perf_counter() - started) * 1000.0 / max(len(examples), 1)


def _parity_error(diffs: Mapping[str, float], n_features: int, where: Path) -> AnnotuneError:
    figures = ", ".join(f"{name} {diff:.3g}" for name, diff in diffs.items())
    return AnnotuneError(
        f"ONNX parity check failed: onnxruntime and PyTorch disagree by up to "
        f"{max(diffs.values()):.3g} (tolerance {FP32_TOLERANCE:g}) on {n_features} sample "
        f"windows ({figures}); no bundle was written", where=str(where),
        hint="report this with the run folder; the run's checkpoint is still usable "
             "with transformers")


# -- the export ------------------------------------------------------------------------------

def export_run(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
               quantize: bool = False,
               parity_texts: Sequence[str | Mapping[str, str]] | None = None,
               progress: Callable[[str], Any] | None = None, fuse: bool = True
               ) -> ExportReport:
    """Export a training run to a checked bundle folder; return what was written and measured.

    ``quantize`` makes model.onnx a dynamic int8 model (about 4x smaller); the fp32 export is
    still parity-checked first, and the int8 model's agreement with it is reported. ``fuse``
    rewrites the graph into onnxruntime's fused transformer operators (core/fusion.py) when
    the architecture allows it; the fused graph is parity-checked like any other.
    ``parity_texts`` replaces the run's recorded samples in the checks. ``progress`` receives
    a short description of each stage as it starts (for a status line).
    """
    started = time.perf_counter()
    run_dir, out_dir = run_folder(Path(run_dir)), Path(out_dir)
    run = read_run(run_dir)
    _check_target(out_dir)
    task = plugins.registry().task(run["task"])
    settings = TaskSettings.from_dict(run.get("settings"))
    model_dir = run_dir / "model"

    tokenizer = prepare_tokenizer(model_dir / "tokenizer.json")
    pad_token_id = pad_id(tokenizer)
    examples = parity_examples(task, run, parity_texts)
    features = task.encode(tokenizer, examples, None, settings)
    if not features:
        raise AnnotuneError("the parity samples produced no model input", where=str(run_dir),
                            hint="pass some non-empty parity texts")
    validation = read_validation(run_dir, task)
    if validation is not None:
        validation.encode(task, tokenizer, settings)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.export-"))
    try:
        report = _build(tmp_dir, run, task, settings, tokenizer, pad_token_id, model_dir,
                        examples, features, validation, quantize, fuse,
                        progress or (lambda _stage: None))
        _replace(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    report.bundle_dir = out_dir
    report.model_path = out_dir / report.model_path.name
    if not record_bundle(run_dir, out_dir):
        report.notes.append("the bundle could not be recorded in the run's folder, so the "
                            "desktop's Try it tab will not list it: choose its folder there")
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _build(tmp_dir: Path, run: Mapping[str, Any], task: Task, settings: TaskSettings,
           tokenizer: Any, pad_token_id: int, model_dir: Path, examples: list[dict[str, str]],
           features: list[Feature], validation_set: ValidationSet | None, quantize: bool,
           fuse: bool, stage: Callable[[str], Any]) -> ExportReport:
    model_path = tmp_dir / bundle_files.MODEL_NAME
    names = task.output_names

    # -- trace: a padded batch of mixed lengths, at least two rows, so no axis is frozen at 1
    stage("loading the model")
    module = onnx_module(load_model(task, model_dir), names)
    trace_features = list(features[:4]) if len(features) > 1 else [features[0], features[0]]
    traced = tmp_dir / "traced.onnx"
    stage("exporting to ONNX")
    export_onnx(module, collate(trace_features, pad_token_id), task, traced)

    # -- fuse, then parity: the same padded batches through PyTorch and onnxruntime
    stage(f"{'fusing the graph, ' if fuse else ''}checking parity on {len(features)} samples")
    reference = run_batches(features, pad_token_id, task,
                            lambda batch: torch_outputs(module, batch, names))
    graph, fusion, exported, inputs, diffs, notes = _checked_graph(
        traced, tmp_dir / "fused.onnx" if fuse else None, model_dir, model_path, reference,
        features, pad_token_id, task)
    fp32_bytes = bundle_files.model_size(model_path)

    # -- validation: the fp32 bundle scored as evaluation after training scored the checkpoint
    metric = str(run.get("main_metric") or task.main_metric)
    scorer = fp32_scored = validation = None
    if validation_set is not None and validation_set.features:
        stage(f"scoring on {len(validation_set.examples):,} validation examples")
        scorer = ValidationScorer(validation_set, task, settings, metric, pad_token_id)
        fp32_scored = scorer.score(model_path)
        recorded = (run.get("metrics") or {}).get(metric)
        validation = ValidationReport(
            metric=metric, examples=len(validation_set.examples), available=validation_set.total,
            fp32=fp32_scored.score, scale=float(getattr(task, "metric_scale", 1.0)),
            recorded=float(recorded) if isinstance(recorded, int | float) else None,
            long_texts=validation_set.long_texts)

    quantization: dict[str, Any] | None = None
    int8_agreement = int8_argmax = int8_scheme = int8_sqnr = None
    if quantize:
        stage("quantizing to int8")
        # From the inline graph: onnxruntime's pre-processing copies the model elsewhere and
        # would lose an external weights file.
        quantization, kept = quantize_bundle_model(
            tmp_dir, graph, model_path, task, settings, examples, features, pad_token_id,
            exported, scorer, fp32_scored)
        int8_agreement, int8_argmax = kept.agreement, kept.argmax
        int8_scheme = "per-channel" if kept.result.per_channel else "per-tensor"
        int8_sqnr = quantization["validation_sqnr_db"]
        if validation is not None and kept.on_validation is not None:
            validation.int8 = kept.on_validation.score
            validation.int8_agreement = kept.validation_agreement
    for path in (traced, tmp_dir / "fused.onnx"):
        path.unlink(missing_ok=True)

    tokenizer.save(str(tmp_dir / bundle_files.TOKENIZER_NAME))
    parity = {"tolerance": FP32_TOLERANCE, "max_abs_diff": max(diffs.values()),
              "per_output": diffs, "examples": len(examples), "features": len(features),
              "compared_at": "real (unpadded) positions, padded mixed-length batches"}
    manifest = bundle_files.write_manifest(tmp_dir, _manifest(
        run, task, settings, parity, quantization, fp32_bytes, inputs, validation, fusion))

    report = ExportReport(
        bundle_dir=tmp_dir, model_path=model_path,
        files={name: entry["bytes"] for name, entry in manifest["files"].items()},
        task=task.name, parity_max_diff=max(diffs.values()), parity_per_output=diffs,
        parity_examples=len(examples), parity_features=len(features), quantized=quantize,
        fp32_bytes=fp32_bytes, int8_bytes=bundle_files.model_size(model_path) if quantize else None,
        int8_agreement=int8_agreement, int8_argmax_agreement=int8_argmax,
        int8_scheme=int8_scheme, int8_sqnr_db=int8_sqnr,
        validation=validation, fused=fusion, notes=notes)
    stage("measuring speed")
    report.latency_ms = round(_measure_latency(tmp_dir, examples), 3)
    if int8_agreement is not None and int8_agreement < 1.0:
        report.notes.append(f"int8 changes {1 - int8_agreement:.0%} of the sample predictions")
    if validation is not None:
        report.notes.extend(validation.notes())
    elif quantize:
        report.notes.append(f"int8 was compared with fp32 on {len(examples)} sample"
                            f"{'s' if len(examples) != 1 else ''} only: without validation "
                            "data its accuracy cost is unknown")
    return report


def _checked_graph(traced: Path, fused: Path | None, model_dir: Path, model_path: Path,
                   reference: list[dict[str, np.ndarray]], features: list[Feature],
                   pad_token_id: int, task: Task) -> tuple[Path, dict[str, int] | None,
                                                          list[dict[str, np.ndarray]], list[str],
                                                          dict[str, float], list[str]]:
    """Write the bundle's graph, fused when ``fused`` is a target and the fusion holds.

    Returns the graph written (traced or fused), the fused operators (None: as traced), the
    onnxruntime outputs, the graph's inputs, the parity figures and notes for the report. A
    fused graph that drifts from PyTorch is replaced by the traced one; a traced one that
    drifts fails the export.
    """
    graph, fusion, notes = traced, None, []
    if fused is not None:
        fusion = fuse_encoder(traced, fused, encoder_shape(model_dir))
        graph = fused if fusion else traced
    while True:
        bundle_files.save_with_external_weights(graph, model_path)
        exported, inputs = run_onnx(model_path, features, pad_token_id, task)
        diffs = max_abs_diff(reference, exported)
        worst = max(diffs.values())
        if worst <= FP32_TOLERANCE:
            return graph, fusion, exported, inputs, diffs, notes
        if graph == traced:  # (a NaN fails the comparison above and ends here too)
            raise _parity_error(diffs, len(features), model_dir)
        notes.append(f"the fused graph differed from PyTorch by {worst:.2g}; the plain graph "
                     "was exported instead")
        graph, fusion = traced, None


def _manifest(run: Mapping[str, Any], task: Task, settings: TaskSettings,
              parity: dict[str, Any], quantization: dict[str, Any] | None, fp32_bytes: int,
              inputs: Sequence[str], validation: ValidationReport | None,
              fusion: Mapping[str, int] | None) -> dict[str, Any]:
    from annotune.core import __version__

    if quantization is not None:
        quantization["fp32_bytes"] = fp32_bytes
    return {
        "task": task.name,
        "settings": settings.to_dict(),
        "labels": list(settings.labels),
        "max_length": settings.max_length,
        "windowing": {"max_length": settings.max_length, "stride": settings.stride},
        "metrics": run.get("metrics") or {},
        "main_metric": run.get("main_metric", getattr(task, "main_metric", None)),
        "base_model": run.get("base_model"),
        "training": {"config": run.get("config"), "device": run.get("device"),
                     "best_epoch": run.get("best_epoch")},
        "annotune_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": bundle_files.MODEL_NAME,
        "model_data": bundle_files.MODEL_DATA_NAME,
        "tokenizer": bundle_files.TOKENIZER_NAME,
        "onnx": {"opset": OPSET, "inputs": list(inputs), "outputs": list(task.output_names),
                 "sequence_outputs": bool(task.sequence_outputs),
                 "dynamic_axes": ["batch", "sequence"], "dtype": "int8" if quantization
                 else "float32",
                 # onnxruntime's fused operators in the graph (None: the graph as traced)
                 "fused_operators": dict(fusion) if fusion else None},
        "quantization": quantization,
        "parity": parity,
        "validation": validation.to_dict() if validation else None,
    }


# -- a child process for the desktop: JSON lines on stdout -----------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """Export in a child process, one JSON event per line (as the training job does).

    ``python -m annotune.core.export RUN_DIR OUT_DIR [--int8]`` prints
    ``{"event": "stage", "stage"}`` lines, then ``{"event": "finished", "report"}`` or
    ``{"event": "failed", "error"}`` (exit code 1). Keeps torch out of the calling process.
    Started with a lifeline (``annotune.core.lifeline.child_options``), it ends within a
    fraction of a second of its parent, however the parent ends; the bundle is written into
    a hidden folder renamed at the end, so an export cut short leaves no half bundle.
    """
    import argparse
    import sys

    from annotune.core.lifeline import PARENT_ENV, ParentWatch, die_with_parent

    if PARENT_ENV in os.environ:
        die_with_parent(True)  # nothing to record on the way out: the kernel may end it
    ParentWatch(exit_code=1).start()
    parser = argparse.ArgumentParser(prog="python -m annotune.core.export",
                                     description="export a training run as an ONNX bundle")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--int8", action="store_true", help="quantize weights to int8")
    args = parser.parse_args(argv)

    def emit(event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    try:
        report = export_run(args.run_dir, args.out_dir, quantize=args.int8,
                            progress=lambda stage: emit({"event": "stage", "stage": stage}))
    except AnnotuneError as error:
        emit({"event": "failed", "error": str(error)})
        return 1
    emit({"event": "finished", "report": report.to_dict()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
