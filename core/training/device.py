"""Pick the device and numeric precision a run trains with, and describe them to people."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from annotune.core.errors import AnnotuneError
from annotune.core.training.config import TrainConfig
from annotune.core.training.model import base_model_width


def choose_device(config: TrainConfig | None = None) -> torch.device:
    """Return the device the config asks for; "auto" prefers CUDA when a GPU is usable."""
    wanted = config.device if config is not None else "auto"
    if wanted == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if wanted == "cuda":
        raise AnnotuneError("training on 'cuda' was asked for, but PyTorch sees no CUDA GPU",
                            hint="choose device 'auto' or 'cpu', or check the NVIDIA driver "
                                 "and that torch was installed with CUDA support")
    return torch.device("cpu")


# Below this hidden size the fallback rule trains in fp32 even on GPUs without TF32 tensor
# cores. On GPUs with them (Ampere and later) it trains in fp32 with TF32 at every width:
# measured on an H200 with 6,000-8,000 SST-2 sentences, batch 32 (bench/train_speed.py), the
# loop ran the MiniLM shape (384 wide) at 2,373 samples/s in fp32 and BERT-base (768 wide) at
# 1,023 in fp32 against 472 with bf16 autocast; on an H100, MiniLM took 6.8 s an epoch in fp32
# and 7.9 s with bf16. Steps on sentence-length inputs are bound by kernel launches, and
# autocast adds cast kernels. Longer inputs can turn this around, which is why "auto" on a GPU
# is measured at the start of each run (core/training/precision.py) rather than guessed.
SMALL_MODEL_WIDTH = 768


def pick_precision(device: torch.device, requested: str = "auto",
                   model_width: int | None = None) -> str:
    """Return "bf16", "fp16" or "fp32" for the device without measuring (the fallback rule).

    An explicit request is checked and kept. For "auto" on CUDA: fp32 with TF32 on Ampere and
    later (see above); on older GPUs fp32 for small models and fp16 autocast with a gradient
    scaler for wide ones (see SMALL_MODEL_WIDTH). The training loop replaces this guess by a
    measurement where half precision may pay (``measures_precision``). CPU: fp32, because
    without bf16 instructions CPU autocast is slower than fp32.
    """
    if device.type != "cuda":
        if requested in ("auto", "fp32"):
            return "fp32"
        if requested == "bf16":
            return "bf16"
        raise AnnotuneError(f"precision '{requested}' is not available when training on the CPU",
                            hint="choose 'auto', 'fp32' or 'bf16'")
    bf16_ok = torch.cuda.is_bf16_supported()  # Ampere and later: TF32 tensor cores too
    if requested == "auto":
        if bf16_ok or (model_width is not None and model_width < SMALL_MODEL_WIDTH):
            return "fp32"
        return "fp16"
    if requested == "bf16" and not bf16_ok:
        raise AnnotuneError(f"this GPU ({torch.cuda.get_device_name(device)}) cannot train in bf16",
                            hint="choose precision 'auto' or 'fp16'")
    return requested


# On the CPU the probe runs only for models at least this wide: tiny ones are bound by
# Python, not by arithmetic, and gain nothing from bf16.
CPU_PROBE_MIN_WIDTH = 256


def cpu_has_bf16() -> bool:
    """Tell whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX).

    Measured on an AMD EPYC with AVX512-BF16 (2 cores, all-MiniLM-L6-v2 shape, batch 32): a
    forward and backward pass took 0.60 s of CPU time with bf16 autocast against 0.95 s in
    fp32 on 32-token inputs, and 2.3 s against 3.9 s on 128-token ones. Without these
    instructions bf16 is emulated and slower than fp32.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def measures_precision(device: torch.device, requested: str = "auto",
                       model_width: int | None = None) -> bool:
    """Tell whether the run times fp32 against half precision before training.

    Only for "auto" (explicit choices are kept): on a GPU always; on a CPU with native bf16
    for models of at least CPU_PROBE_MIN_WIDTH hidden units. Other CPUs train in fp32.
    """
    if requested != "auto":
        return False
    if device.type == "cuda":
        return True
    return (device.type == "cpu" and model_width is not None
            and model_width >= CPU_PROBE_MIN_WIDTH and cpu_has_bf16())


def half_precision(device: torch.device) -> str:
    """Return the half precision a device trains in: bf16, or fp16 on GPUs without bf16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return "bf16"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """Return the autocast dtype for a precision name (None: no autocast)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def _ram_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def describe_device(config: TrainConfig | None = None) -> dict[str, Any]:
    """Describe where (and in which precision) training would run: train panel, run record.

    Returns ``{"device": "cuda"|"cpu", "name": ..., "memory_gb": ..., "precision": ...}``.
    Before a run, "auto" on a GPU reads e.g. "fp32 or bf16, measured at start": the loop
    times both on the run's own batches and its run.json records the one it chose.
    """
    config = config or TrainConfig()
    device = choose_device(config)
    if measures_precision(device, config.precision, base_model_width(config.base_model)):
        precision = f"fp32 or {half_precision(device)}, measured at start"
    else:
        precision = pick_precision(device, config.precision,
                                   base_model_width(config.base_model))
    memory: float | None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name, memory = props.name, props.total_memory / 2**30
    else:
        name, memory = _cpu_name(), _ram_gb()
    return {"device": device.type, "name": name,
            "memory_gb": round(memory, 1) if memory is not None else None,
            "precision": precision}


def device_label(description: dict[str, Any]) -> str:
    """Format a description on one line, e.g. ``cuda (NVIDIA H100 80GB HBM3, bf16)``.

    Before an "auto" run on a GPU: ``cuda (NVIDIA H100 80GB HBM3, fp32 or bf16, measured at
    start)``.
    """
    return f"{description['device']} ({description['name']}, {description['precision']})"
