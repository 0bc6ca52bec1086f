"""Open onnxruntime sessions the same way everywhere: the Predictor, the export's checks, benches.

One place decides the session settings, so what the export measures (parity, int8 cost on
validation data) is what the Predictor will run: all graph optimisations but one on the CPU,
one thread per physical core that spins only briefly, the execution provider the caller asks
for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError

DEVICES = ("cpu", "cuda", "auto")

# onnxruntime fuses a residual Add and the LayerNormalization after it into one
# SkipLayerNormalization node, whose CPU kernel runs about five times slower than the two nodes
# it replaces (onnxruntime 1.32, a 128 x 384 activation on one thread: 250 us against 50 us).
# Other execution providers keep the fusion: their kernel for it is the fast one.
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)

# How onnxruntime's idle intra-op threads wait. By default they spin (busy-wait) for a long
# while after every operator and after every run: on a quiet machine that saves the wake-up
# between operators, but each spinning thread holds a core that the caller (tokenizing the
# next text), another program or the machine's other users need, and the run then waits for
# threads that lost their core. Spinning 50 us at most catches the next operator of the same
# run (a few microseconds away), and no spinning after a run leaves the cores to the caller.
# Measured on 2 cores, one SST-2 sentence per call, int8 / fp32 bundle, ms per call: quiet
# 2.03 / 4.49 spinning as by default, 2.11 / 4.55 this way, 2.90 / 5.63 never spinning; beside
# other programs (load 9 on 2 cores) 14.2 / 31.5 spinning, 4.8 / 9.4 this way (docs/benchmarks.md).
CPU_SPIN_CONFIG = {"session.intra_op.spin_duration_us": "50", "session.force_spinning_stop": "1"}


def physical_cores() -> int:
    """Return the number of physical CPU cores this process may use (hyper-threads not counted).

    onnxruntime runs fastest with one thread per physical core; a second thread per core
    mostly contends for the same execution units. Linux's CPU topology gives the answer for
    the CPUs this process may run on; elsewhere psutil does when installed (optional).
    """
    allowed = _allowed_cpus()
    cores = _linux_cores(allowed)
    if cores:
        return cores
    try:
        import psutil  # optional, not a dependency

        count = psutil.cpu_count(logical=False)
        if count:
            return max(1, min(int(count), len(allowed)))
    except ImportError:
        pass
    return max(1, len(allowed))


def _linux_cores(cpus: Sequence[int]) -> int:
    """Count distinct (package, core) pairs among ``cpus``; 0 when the topology is unreadable."""
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            return 0
    return len(cores)


def _allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return list(range(os.cpu_count() or 1))


def import_onnxruntime() -> Any:
    """Import onnxruntime (a quarter of a second or more): callers overlap it with other work."""
    import onnxruntime

    return onnxruntime


def open_session(model: Path, threads: int | None = None, device: str = "cpu") -> Any:
    """Open ``model`` with all graph optimisations and one intra-op thread per physical core.

    ``device`` is "cpu", "cuda" (refused when onnxruntime has no CUDA provider) or "auto".
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads if threads and threads > 0 else physical_cores()
    options.inter_op_num_threads = 1  # BERT graphs are a chain: parallel branches buy nothing
    options.log_severity_level = 3  # its warnings (unused initializers...) mean nothing to users
    for key, value in CPU_SPIN_CONFIG.items():  # older onnxruntime versions ignore the keys
        options.add_session_config_entry(key, value)
    available = ort.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    elif device == "cuda":
        raise AnnotuneError("onnxruntime here has no CUDA support",
                            hint="install onnxruntime-gpu, or predict on the CPU")
    disabled = list(CPU_DISABLED_OPTIMIZERS) if providers == ["CPUExecutionProvider"] else []
    try:
        # From the path, not from bytes: onnxruntime then maps the external weights file
        # (model.onnx.data) instead of copying it, and opens about twice as fast.
        return ort.InferenceSession(str(model), options, providers=providers,
                                    disabled_optimizers=disabled)
    except Exception as error:  # onnxruntime raises its own classes for corrupt graphs
        raise AnnotuneError(f"onnxruntime cannot load {model}: {error}",
                            hint="export the run again") from error
