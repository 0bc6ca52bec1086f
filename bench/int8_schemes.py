"""Compare the int8 schemes onnxruntime offers for a bundle: speed at batch 1 and accuracy.

The demo's trained run (``annotune demo --dir DIR``) is copied to a scratch folder, traced and
fused as the export does (core/export/build.py, core/export/fusion.py), and quantized each way:

* dynamic int8 (what the export writes): weights int8, each activation quantized at run time;
  on the fused graph (QAttention, DynamicQuantizeMatMul) per tensor and per channel, and on the
  plain traced graph;
* static int8, calibrated on the run's own validation texts, so activations are not
  re-quantized at run time: QDQ with per-channel weights, and QOperator (QLinearMatMul) per
  tensor. onnxruntime's static quantizer has no fused attention, so both start from the
  traced graph;
* MatMulNBits with 8-bit weights in blocks of 32 and accuracy level 4 (int8 compute, kernels
  tuned for few rows): on the traced graph, and on the fused graph with its attention
  quantized dynamically (QAttention), since MatMulNBits needs plain MatMuls;
* the fused graphs with FastGelu (tanh approximation) in place of BiasGelu, fp32 and int8.

Each graph is timed in one process, the graphs alternating run by run over the first N SST-2
dev sentences: one thread (the calling thread's CPU time is the run's work) and the sessions'
default threads (wall time). Every graph then predicts the whole SST-2 dev set: accuracy, and
agreement with the fp32 graph's decisions. Last, the int8 graph's kernel time by operator
(what stays fp32), and what opening a graph that onnxruntime had already optimised saves.

    python bench/int8_schemes.py --demo /tmp/sdemo --sentences 200 --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    DEFAULT_DATA_DIR,
    SST2_LABELS,
    check_data_dir,
    hardware,
    print_json_line,
    print_table,
)

FP32 = "fp32, fused (as exported)"
DYNAMIC = "dynamic int8, fused, per tensor (as exported)"
NBITS_BLOCK = 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, required=True,
                        help="folder `annotune demo --dir` wrote (read only; its run is copied)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder holding sst2/ (default: ../shared/datasets beside the "
                             "repository)")
    parser.add_argument("--sentences", type=int, default=200,
                        help="first N SST-2 dev sentences timed at batch 1 (default: 200)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="passes over the sentences, graphs alternating (default: 3)")
    parser.add_argument("--score-limit", type=int, default=None,
                        help="score only the first N SST-2 dev sentences (default: all 6,735)")
    return parser.parse_args(argv)


# -- the graphs ----------------------------------------------------------------------------------

def demo_run(demo: Path) -> Path:
    runs = sorted((p for p in (demo / "demo-runs").glob("*") if (p / "run.json").exists()),
                  key=lambda p: int(p.name) if p.name.isdigit() else -1)
    if not runs:
        sys.exit(f"{demo} holds no demo run: run `annotune demo --dir {demo}` first")
    return runs[-1]


def traced_and_fused(run_dir: Path, folder: Path) -> tuple[Path, Path, Any]:
    """Trace and fuse the run's checkpoint as the export does; return both graphs and the run."""
    from annotune.core.export.build import FUSED_NAME, TRACED_NAME, ExportBuild
    from annotune.core.export.fusion import encoder_shape, fuse_encoder
    from annotune.core.export.trained_run import TrainedRun, read_run, run_folder

    run_dir = run_folder(run_dir)
    source = TrainedRun.load(run_dir, read_run(run_dir), None)
    ExportBuild(source, folder).trace()
    if not fuse_encoder(folder / TRACED_NAME, folder / FUSED_NAME,
                        encoder_shape(source.model_dir)):
        sys.exit("the demo's encoder did not fuse: this comparison needs the fused graph")
    return folder / TRACED_NAME, folder / FUSED_NAME, source


def matmul_nbits(source: Path, target: Path) -> None:
    """Replace every MatMul by a constant 2-D weight with MatMulNBits (8 bits, accuracy level 4).

    onnxruntime's own MatMulNBitsQuantizer needs the onnx_ir package; the packing is the same
    C++ routine it calls. A bias Add right after the MatMul goes into the node's bias input.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.capi._pybind_state import quantize_matmul_8bits

    model = onnx.load(str(source))
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    nodes, folded = [], set()
    for node in graph.node:
        if id(node) in folded:
            continue
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2:
            nodes.append(node)
            continue
        matrix = numpy_helper.to_array(weight).astype(np.float32)
        k, n = matrix.shape
        blocks = -(-k // NBITS_BLOCK)
        padded = np.ascontiguousarray(np.pad(matrix, ((0, blocks * NBITS_BLOCK - k), (0, 0))))
        packed = np.zeros((n, blocks, NBITS_BLOCK), dtype=np.uint8)
        scales = np.zeros((n, blocks), dtype=np.float32)
        zero_points = np.zeros((n, blocks), dtype=np.uint8)
        quantize_matmul_8bits(packed, padded, scales, zero_points, NBITS_BLOCK, n, k, True)
        graph.initializer.extend([numpy_helper.from_array(packed, weight.name + ".q8"),
                                  numpy_helper.from_array(scales.reshape(-1),
                                                          weight.name + ".scales")])
        inputs = [node.input[0], weight.name + ".q8", weight.name + ".scales"]
        output = node.output[0]
        after = consumers.get(output, [])
        if len(after) == 1 and after[0].op_type == "Add":
            bias = [name for name in after[0].input if name != output]
            if bias and bias[0] in weights and len(weights[bias[0]].dims) == 1:
                inputs += ["", "", bias[0]]  # zero points and group index unused
                output = after[0].output[0]
                folded.add(id(after[0]))
        nodes.append(helper.make_node("MatMulNBits", inputs, [output], name=node.name + ".nbits",
                                      domain="com.microsoft", K=k, N=n, bits=8,
                                      block_size=NBITS_BLOCK, accuracy_level=4))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(target))


def fast_gelu(source: Path, target: Path) -> None:
    """Write ``source`` with FastGelu (tanh approximation, same bias input) for BiasGelu."""
    import onnx

    model = onnx.load(str(source))
    for node in model.graph.node:
        if node.op_type == "BiasGelu":
            node.op_type = "FastGelu"
    onnx.save(model, str(target))


def static_int8(source: Path, target: Path, calibration: list[dict[str, np.ndarray]],
                qdq: bool) -> None:
    """Quantize weights and activations with scales calibrated on ``calibration`` (static)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    quantize_static(str(source), str(target), Reader(),
                    quant_format=QuantFormat.QDQ if qdq else QuantFormat.QOperator,
                    per_channel=qdq, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT,
                                   "MatMulConstBOnly": True})


def dynamic_attention(source: Path, target: Path) -> None:
    """Quantize only the fused attention and embedding nodes dynamically (MatMuls are NBits)."""
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    quantize_dynamic(str(source), str(target),
                     op_types_to_quantize=["Attention", "EmbedLayerNormalization"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def build_graphs(traced: Path, fused: Path, folder: Path,
                 calibration: list[dict[str, np.ndarray]]) -> dict[str, Path]:
    """Write every candidate graph into ``folder``; return them by name (fp32 first)."""
    from annotune.core.export.quantize import quantize_int8

    def path(name: str) -> Path:
        return folder / f"{name}.onnx"

    steps: list[tuple[str, Callable[[Path], Any]]] = [
        (DYNAMIC, lambda out: quantize_int8(fused, out)),
        ("dynamic int8, fused, per channel", lambda out: quantize_int8(fused, out, True)),
        ("dynamic int8, unfused", lambda out: quantize_int8(traced, out)),
        ("static QDQ, per-channel weights, calibrated, unfused",
         lambda out: static_int8(traced, out, calibration, qdq=True)),
        ("static QOperator (QLinearMatMul), per tensor, calibrated, unfused",
         lambda out: static_int8(traced, out, calibration, qdq=False)),
        ("MatMulNBits 8 bits, accuracy level 4, unfused", lambda out: matmul_nbits(traced, out)),
        ("MatMulNBits 8 bits + QAttention, fused",
         lambda out: (matmul_nbits(fused, path("nbits-fused")),
                      dynamic_attention(path("nbits-fused"), out))),
        ("dynamic int8, fused, FastGelu",
         lambda out: fast_gelu(path("g0"), out)),
        ("fp32, fused, FastGelu", lambda out: fast_gelu(fused, out)),
    ]
    graphs = {FP32: fused}
    root = logging.getLogger()
    root.setLevel(logging.ERROR)  # the quantizers' advice on pre-processing, on every call
    for number, (name, make) in enumerate(steps):
        out = path(f"g{number}")
        try:
            make(out)
        except Exception as error:  # noqa: BLE001 - one scheme failing leaves the others
            print(f"  {name}: could not be made ({type(error).__name__}: {error})")
            continue
        graphs[name] = out
        print(f"  made {name}", flush=True)
    return graphs


# -- measuring -----------------------------------------------------------------------------------

def open_graph(path: Path, threads: int, optimized_to: Path | None = None,
               level: str = "all") -> Any:
    """Open a graph as core/runtime.py opens bundles (its spinning and disabled fusions)."""
    import onnxruntime as ort

    from annotune.core import runtime
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if level == "all"
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if optimized_to is not None:
        options.optimized_model_filepath = str(optimized_to)
    for key, value in runtime.CPU_SPIN_CONFIG.items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(runtime.CPU_DISABLED_OPTIMIZERS))


def feeds_for(source: Any, texts: list[str]) -> list[dict[str, np.ndarray]]:
    """Encode texts one per batch with the run's task, as Predictor.predict([text]) does."""
    from annotune.core.features import collate
    feeds = []
    for text in texts:
        field = source.task.fields[0]
        features = source.task.encode(source.tokenizer, [{field: text}], None, source.settings)
        feeds.append(collate(features[:1], source.pad_token_id))
    return feeds


def time_graphs(graphs: dict[str, Path], feeds: list[dict[str, np.ndarray]], rounds: int
                ) -> dict[str, dict[str, float]]:
    """Return per graph the mean CPU ms of a run at one thread and the median wall ms at default.

    All graphs stay open in this process and take turns run by run, so the machine's drift
    falls on every graph alike.
    """
    from annotune.core.runtime import physical_cores
    found: dict[str, dict[str, float]] = {name: {} for name in graphs}
    for threads, key in ((1, "cpu_ms_1_thread"), (physical_cores(), "wall_ms_default_threads")):
        sessions = {name: open_graph(path, threads) for name, path in graphs.items()}
        inputs = {name: [i.name for i in s.get_inputs()] for name, s in sessions.items()}
        spent: dict[str, list[float]] = {name: [] for name in graphs}
        for _ in range(rounds):
            for feed in feeds:
                for name, session in sessions.items():
                    own = {k: feed[k] for k in inputs[name]}
                    clock = time.thread_time if threads == 1 else time.perf_counter
                    started = clock()
                    session.run(None, own)
                    spent[name].append((clock() - started) * 1000)
        for name, values in spent.items():
            found[name][key] = round(statistics.mean(values) if threads == 1
                                     else statistics.median(values), 3)
    return found


def accuracy(graphs: dict[str, Path], feeds: list[dict[str, np.ndarray]], gold: list[int],
             labels: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Return each graph's SST-2 dev accuracy and agreement with the fp32 graph's decisions."""
    # the demo's labels in SST-2's order (0 negative, 1 positive)
    order = [labels.index(name) for name in SST2_LABELS]
    decisions = {}
    for name, path in graphs.items():
        session = open_graph(path, 0)
        inputs = [i.name for i in session.get_inputs()]
        logits = np.concatenate([session.run(["logits"], {k: f[k] for k in inputs})[0]
                                 for f in feeds])
        decisions[name] = (logits[:, order].argmax(axis=1), logits)
    reference, fp32_logits = decisions[FP32]
    truth = np.asarray(gold)
    return {name: {"accuracy": round(float((chosen == truth).mean()), 4),
                   "agreement_with_fp32": round(float((chosen == reference).mean()), 4),
                   "max_abs_diff_vs_fp32": round(float(np.abs(logits - fp32_logits).max()), 4)}
            for name, (chosen, logits) in decisions.items()}


def operator_times(path: Path, feeds: list[dict[str, np.ndarray]], folder: Path
                   ) -> list[list[Any]]:
    """Return [operator, share of kernel time %, µs per run] at one thread, largest first."""
    import onnxruntime as ort

    from annotune.core import runtime
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / "profile")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=list(runtime.CPU_DISABLED_OPTIMIZERS))
    inputs = [i.name for i in session.get_inputs()]
    for feed in feeds:
        session.run(None, {k: feed[k] for k in inputs})
    kernel: dict[str, float] = {}
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            kernel[op] = kernel.get(op, 0.0) + event["dur"]
    total = sum(kernel.values()) or 1.0
    return [[op, round(100 * spent / total, 1), round(spent / len(feeds), 1)]
            for op, spent in sorted(kernel.items(), key=lambda item: -item[1])]


def load_cost(graphs: dict[str, Path], folder: Path, repeats: int = 5) -> list[list[Any]]:
    """Return CPU ms to open each bundle graph as exported and as onnxruntime saved it optimised."""
    rows = []
    for name in (FP32, DYNAMIC):
        if name not in graphs:
            continue
        optimised = folder / f"optimised-{len(rows)}.onnx"
        open_graph(graphs[name], 1, optimized_to=optimised)
        ways = {"as exported": (graphs[name], "all"), "saved optimised": (optimised, "all"),
                "saved optimised, no optimisation at load": (optimised, "none")}
        for way, (path, level) in ways.items():
            spent = []
            for _ in range(repeats):
                started = time.process_time()
                open_graph(path, 1, level=level)
                spent.append((time.process_time() - started) * 1000)
            rows.append([name, way, round(statistics.median(spent), 1)])
    return rows


def sst2_dev(data_dir: Path) -> tuple[list[str], list[int]]:
    folder = check_data_dir(data_dir, "sst2")
    with (folder / "dev.tsv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [row["sentence"] for row in rows], [int(row["label"]) for row in rows]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    texts, gold = sst2_dev(args.data_dir)
    if args.score_limit:
        kept = max(args.score_limit, args.sentences)  # the timed sentences are scored too
        texts, gold = texts[:kept], gold[:kept]
    run = demo_run(args.demo)
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="int8-schemes-") as scratch:
        folder = Path(scratch)
        shutil.copytree(run, folder / "run")  # the demo's folder stays untouched
        print("tracing and fusing the demo's run ...", flush=True)
        traced, fused, source = traced_and_fused(folder / "run", folder)
        validation = source.validation
        calibration_texts = ([e[source.task.fields[0]] for e in validation.examples]
                             if validation is not None and validation.examples else texts[-100:])
        calibration = feeds_for(source, calibration_texts)
        graphs = build_graphs(traced, fused, folder, calibration)
        feeds = feeds_for(source, texts)
        print("timing ...", flush=True)
        speed = time_graphs(graphs, feeds[:args.sentences], args.rounds)
        load_timed = round(os.getloadavg()[0], 2)
        print("scoring SST-2 dev ...", flush=True)
        scored = accuracy(graphs, feeds, gold, tuple(source.settings.labels))
        operators = operator_times(graphs[DYNAMIC], feeds[:args.sentences], folder)
        loading = load_cost(graphs, folder)
    loads = f"load average {load_before}-{load_timed}"
    print_table(f"Batch 1, {args.sentences} SST-2 dev sentences x {args.rounds} rounds, graphs "
                f"alternating run by run ({loads}); SST-2 dev ({len(texts)} sentences)",
                ["graph", "CPU ms, 1 thread", "wall ms, default threads", "accuracy",
                 "agrees with fp32", "max |logit diff|"],
                [[name, speed[name]["cpu_ms_1_thread"], speed[name]["wall_ms_default_threads"],
                  scored[name]["accuracy"], scored[name]["agreement_with_fp32"],
                  scored[name]["max_abs_diff_vs_fp32"]] for name in graphs])
    print_table(f"{DYNAMIC}: kernel time by operator, one thread", ["operator", "share %",
                                                                     "µs per run"], operators)
    print_table("Opening a graph (CPU ms, median of 5)", ["graph", "how", "ms"], loading)
    print_json_line("int8_schemes", {"hardware": hardware(), "load_average": loads,
                                     "sentences": args.sentences, "rounds": args.rounds,
                                     "calibration_texts": len(calibration_texts),
                                     "speed": speed, "accuracy": scored,
                                     "operators": operators, "loading": loading})


if __name__ == "__main__":
    main()
