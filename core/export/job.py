"""Export in a child process that prints one JSON event per line (as the training job does).

``python -m annotune.core.export.job RUN_DIR OUT_DIR [--int8]`` prints
``{"event": "stage", "stage"}`` lines, then ``{"event": "finished", "report"}`` or
``{"event": "failed", "error"}`` (exit code 1). The desktop starts it in the training
environment (core/training_env.py ``export_in_child``), which keeps torch out of its own
process. Started with a lifeline (``annotune.core.lifeline.child_options``), it ends within a
fraction of a second of its parent, however the parent ends; the bundle is written into a
hidden folder renamed at the end, so an export cut short leaves no half bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from annotune.core.errors import AnnotuneError
from annotune.core.events import Event, ExportFinished, ExportStage, Failed
from annotune.core.export.pipeline import export_run
from annotune.core.lifeline import PARENT_ENV, ParentWatch, die_with_parent


def main(argv: Sequence[str] | None = None) -> int:
    """Export the run named on the command line, reporting stages and the end as JSON lines."""
    if PARENT_ENV in os.environ:
        die_with_parent(True)  # nothing to record on the way out: the kernel may end it
    ParentWatch(exit_code=1).start()
    parser = argparse.ArgumentParser(prog="python -m annotune.core.export.job",
                                     description="export a training run as an ONNX bundle")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--int8", action="store_true", help="quantize weights to int8")
    args = parser.parse_args(argv)

    def emit(event: Event) -> None:
        sys.stdout.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    try:
        report = export_run(args.run_dir, args.out_dir, quantize=args.int8,
                            progress=lambda stage: emit(ExportStage(event="stage", stage=stage)))
    except AnnotuneError as error:
        emit(Failed(event="failed", error=str(error)))
        return 1
    emit(ExportFinished(event="finished", report=report.to_dict()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
