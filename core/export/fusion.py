"""Fuse an exported encoder graph into onnxruntime's transformer operators (fewer, bigger nodes).

The TorchScript export spells each attention layer out in about thirty small nodes (reshapes,
transposes, shape arithmetic, the mask's broadcasting). onnxruntime's session optimisations
fuse layer norms and GELU but not attention. Its transformer optimizer rewrites each layer
into one Attention node (QAttention once quantized), LayerNormalization and BiasGelu, and
the embeddings into one EmbedLayerNormalization: about a quarter of the nodes. At batch 1 on
short texts every node costs a dispatch to the thread pool, so fewer nodes run faster; this is
the fusion Optimum's ORTOptimizer applies, less one.

The residual add and layer norm stay two nodes (Add, LayerNormalization) instead of one
SkipLayerNormalization: onnxruntime's CPU kernel for that fused node runs about five times
slower than the two it replaces (onnxruntime 1.32, a 128 x 384 activation on one thread:
250 us against 50 us), which made it a sixth of the int8 graph's time at 128 tokens.
Sessions on the CPU skip onnxruntime's own SkipLayerNormFusion for the same reason
(core/runtime.py).

The fused operators are onnxruntime's own (the com.microsoft domain): a fused bundle needs
onnxruntime, which is what the Predictor runs on. A graph the optimizer cannot fuse (an
architecture it does not know) is left as exported.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Encoder families whose exported graphs onnxruntime's "bert" fusion recognises.
FUSABLE_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "camembert",
                       "mpnet")


def encoder_shape(model_dir: Path) -> dict[str, Any] | None:
    """Return ``{"model_type", "num_heads", "hidden_size"}`` from a checkpoint's config.json."""
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    heads = config.get("num_attention_heads", config.get("n_heads"))
    hidden = config.get("hidden_size", config.get("dim"))
    if not isinstance(heads, int) or not isinstance(hidden, int):
        return None
    # a pooled classifier (core/training/pooling.py) keeps its encoder's type inside
    model_type = (config.get("encoder") or {}).get("model_type") or config.get("model_type")
    return {"model_type": str(model_type or ""), "num_heads": heads,
            "hidden_size": hidden}


def fuse_encoder(source: Path, target: Path, shape: Mapping[str, Any] | None
                 ) -> dict[str, int] | None:
    """Write a fused copy of ``source`` (weights inline) to ``target``.

    Returns the fused operators and their counts, or None (nothing written) when the model
    type is not one the fusion knows, the optimizer is missing, or no attention layer fused.
    """
    if shape is None or shape.get("model_type") not in FUSABLE_MODEL_TYPES:
        return None
    try:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError:  # a trimmed onnxruntime build without its Python tools
        return None
    options = FusionOptions("bert")
    # The tokenizer's attention mask (1 = token, 0 = padding) goes in as it is, so padded
    # batches keep working and the Predictor feeds the same inputs as before.
    options.use_raw_attention_mask(True)
    options.enable_skip_layer_norm = False  # slow on the CPU: see the module's docstring
    options.enable_bias_skip_layer_norm = False
    logger = logging.getLogger("onnxruntime.transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)  # it logs every fusion it tries at INFO/WARNING
    try:
        optimized = optimize_model(str(source), model_type="bert",
                                   num_heads=int(shape["num_heads"]),
                                   hidden_size=int(shape["hidden_size"]),
                                   optimization_options=options, opt_level=0)
    except Exception:  # noqa: BLE001 - fusion is an optimisation: keep the plain graph
        return None
    finally:
        logger.setLevel(level)
    fused = {name: count for name, count in optimized.get_fused_operator_statistics().items()
             if count}
    if not fused.get("Attention"):
        return None
    optimized.save_model_to_file(str(target), use_external_data_format=False)
    return fused
