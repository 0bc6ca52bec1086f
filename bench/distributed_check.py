"""Check a run on several processes against the same run on one: steps, score and time.

One SST-2 project (the first --train-limit sentences of train.tsv; annotune's own automatic
validation split) is prepared twice with the same config (`annotune train --prepare-only`,
batch_size being the global batch) and trained twice: in one process (`python -m
annotune.core.training.job RUN_DIR`) and with `torchrun --standalone --nproc-per-node N`.
Prints each side's optimizer steps, best validation score, seconds per epoch and training
samples per second, and the score difference (dropout masks differ between the processes, as
in every DDP run, so the scores agree within noise, not to the last digit).

    python bench/distributed_check.py --train-limit 20000 --epochs 2       # every GPU, >= 2
    python bench/distributed_check.py --device cpu --processes 2 --train-limit 600 --epochs 1

With fewer than 2 GPUs visible (and --device not cpu) it prints one "skipped" line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    add_common_arguments,
    hardware,
    load_bench_data,
    model_name,
    print_json_line,
    print_table,
    resolve_base_model,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--processes", type=int, default=None,
                        help="processes of the distributed side (default: every GPU)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="the global batch of both sides")
    return parser.parse_args(argv)


def train(command: list[str], run_dir: Path, cpu_threads: int | None = None) -> dict[str, Any]:
    """Train a prepared run with ``command``; return its run.json and the wall time."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    if cpu_threads is not None:  # torchrun gives each process one thread: so does one process
        env.setdefault("OMP_NUM_THREADS", str(cpu_threads))
    done = subprocess.run([*command, "-m", "annotune.core.training.job", str(run_dir)],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        sys.exit(f"training in {run_dir} failed (exit {done.returncode}):\n{tail}")
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return {**record, "wall_s": round(wall, 1)}


def side(name: str, record: dict[str, Any], main: str) -> dict[str, Any]:
    epochs = record["history"]
    seconds = sum(epoch["seconds"] for epoch in epochs) / len(epochs)
    return {"side": name, "processes": record["device"].get("processes", 1),
            "steps": record["steps"], "best_epoch": record["best_epoch"],
            "score": record["metrics"].get(main), "epoch_s": round(seconds, 2),
            "samples_per_s": round(record["train_examples"] / seconds, 1),
            "wall_s": record["wall_s"], "precision": record["device"].get("precision")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    gpus = torch.cuda.device_count() if args.device != "cpu" else 0
    processes = args.processes or gpus
    if args.device != "cpu" and (gpus < 2 or processes < 2):
        print(f"skipped: {gpus} GPU{'s' if gpus != 1 else ''} visible; this check needs 2 or "
              "more (or --device cpu --processes 2)")
        print_json_line("distributed_check", {"skipped": True, "gpus": gpus})
        return 0
    processes = max(2, processes)

    from annotune.core.formats.base import ImportRecord
    from annotune.core.store import Project
    from annotune.core.training.config import TrainConfig
    from annotune.core.training.job import prepare_run

    base_model = resolve_base_model(args.base_model)
    data = load_bench_data("sst2", args.data_dir, args.train_limit, args.eval_limit)
    config = TrainConfig(base_model=base_model, epochs=args.epochs or 2,
                         batch_size=args.batch_size, device=args.device,
                         early_stopping_patience=0)  # both sides train every epoch
    with tempfile.TemporaryDirectory(prefix="annotune-distributed-") as tmp:
        work = Path(tmp)
        with Project.create(work / "sst2.annotune", task=data.task.name,
                            settings=data.settings, base_model=base_model) as project:
            project.add_examples([ImportRecord(fields=dict(fields), annotation=annotation)
                                  for fields, annotation in data.train], source="train.tsv")
            one_dir = prepare_run(project, config, work / "one").folder
            many_dir = prepare_run(project, config, work / "many").folder
        print(f"sst2: {len(data.train):,} sentences, base model {model_name(base_model)}, "
              f"global batch {config.batch_size}, {config.epochs} epochs; 1 process, then "
              f"{processes}", flush=True)
        one = train([sys.executable], one_dir, 1 if args.device == "cpu" else None)
        many = train([sys.executable, "-m", "torch.distributed.run", "--standalone",
                      "--nproc-per-node", str(processes)], many_dir)
    main_metric = data.task.main_metric
    rows = [side("1 process", one, main_metric), side(f"{processes} processes", many,
                                                     main_metric)]
    info = hardware()
    print_table(f"one run, 1 process against {processes} (device {args.device}; "
                f"{info.get('gpu') or info['cpu']})",
                ["side", "steps", "best epoch", main_metric, "s/epoch", "samples/s", "wall s"],
                [[r["side"], r["steps"], r["best_epoch"], r["score"], r["epoch_s"],
                  r["samples_per_s"], r["wall_s"]] for r in rows])
    difference = (rows[1]["score"] or 0.0) - (rows[0]["score"] or 0.0)
    same_steps = rows[0]["steps"] == rows[1]["steps"]
    print(f"\nsteps {'equal' if same_steps else 'DIFFER'}; {main_metric} difference "
          f"{difference:+.4f}; speed-up {rows[0]['epoch_s'] / rows[1]['epoch_s']:.2f}x")
    print_json_line("distributed_check", {"processes": processes, "device": args.device,
                                          "train_examples": len(data.train), "rows": rows,
                                          "score_difference": difference,
                                          "same_steps": same_steps, "hardware": info})
    return 0 if same_steps else 1


if __name__ == "__main__":
    sys.exit(main())
