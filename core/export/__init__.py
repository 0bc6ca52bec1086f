"""Turn a training run into a bundle: ONNX model (+ optional int8), tokenizer.json, manifest.json.

The export is checked before it is kept: PyTorch and onnxruntime run the same padded batch of
mixed-length samples and must agree to 1e-4 at every real position. When the run kept its
validation split (validation.jsonl), the fp32 and int8 bundles are scored on it with the task's
main metric, so the cost of int8 is stated in points of that metric. Everything is written to
a hidden sibling folder that is renamed into place at the end, so a failed export never leaves
a half bundle behind.

One module per stage: ``trained_run`` (run folder, run.json, parity samples), ``trace``
(checkpoint -> ONNX), ``fusion``, ``parity``, ``validation`` (scoring a bundle on the run's
validation data), ``quantize``, ``manifest``, ``latency``, ``report``; ``build`` runs them on
one export (``ExportBuild``), ``pipeline`` orders them (``export_run``), ``bundle_folder``
writes the bundle in a hidden folder, and ``job`` is the child process the desktop starts.

torch and transformers are imported inside the functions that need them, so importing this
package (the CLI does, for ``--help``; the desktop does, for the report) stays cheap.
"""

from annotune.core.export.pipeline import export_run
from annotune.core.export.report import ExportReport, validation_lines
from annotune.core.export.trained_run import read_run, run_folder

__all__ = ["ExportReport", "export_run", "read_run", "run_folder", "validation_lines"]
