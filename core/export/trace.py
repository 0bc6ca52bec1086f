"""Trace a run's checkpoint to ONNX with the TorchScript exporter, and run it in PyTorch.

torch and transformers are imported inside the functions, so importing the export package
(the CLI does, for ``--help``; the desktop does for the report) stays cheap and torch-free.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annotune.core.errors import AnnotuneError
from annotune.core.features import MODEL_INPUTS
from annotune.core.tasks import Task

OPSET = 17


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
