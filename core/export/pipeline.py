"""Export a training run to a checked bundle folder: the stages of core/export/build.py in order."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from annotune.core.bundle_records import record_bundle
from annotune.core.export.build import ExportBuild
from annotune.core.export.bundle_folder import check_target, staged_bundle
from annotune.core.export.report import ExportReport
from annotune.core.export.trained_run import TrainedRun, read_run, run_folder


def export_run(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
               quantize: bool = False,
               parity_texts: Sequence[str | Mapping[str, str]] | None = None,
               progress: Callable[[str], Any] | None = None, fuse: bool = True
               ) -> ExportReport:
    """Export a training run to a checked bundle folder; return what was written and measured.

    ``quantize`` makes model.onnx a dynamic int8 model (about 4x smaller); the fp32 export is
    still parity-checked first, and the int8 model's agreement with it is reported. ``fuse``
    rewrites the graph into onnxruntime's fused transformer operators (core/export/fusion.py)
    when the architecture allows it; the fused graph is parity-checked like any other.
    ``parity_texts`` replaces the run's recorded samples in the checks. ``progress`` receives
    a short description of each stage as it starts (for a status line).
    """
    started = time.perf_counter()
    run_dir, out_dir = run_folder(Path(run_dir)), Path(out_dir)
    run = read_run(run_dir)
    check_target(out_dir)  # refused before any work, and again before the rename
    source = TrainedRun.load(run_dir, run, parity_texts)
    with staged_bundle(out_dir) as folder:
        build = ExportBuild(source, folder, quantize=quantize, fuse=fuse,
                            stage=progress or (lambda _text: None))
        build.trace()
        build.check_parity()
        build.score_validation()
        build.quantize_int8()
        build.write_files()
        report = build.report()
    report.bundle_dir = out_dir
    report.model_path = out_dir / report.model_path.name
    if not record_bundle(run_dir, out_dir):
        report.notes.append("the bundle could not be recorded in the run's folder, so the "
                            "desktop's Try it tab will not list it: choose its folder there")
    report.seconds = round(time.perf_counter() - started, 2)
    return report
