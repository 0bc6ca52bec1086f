"""Share what the benchmark scripts need: paths, data sets, splits, printing and annotune scoring.

Every benchmark reads the real data sets with annotune's own importers (which also exercises
them), keeps one fixed train/held-out split per data set, and scores annotune and the plain
Hugging Face recipes with the task's own metric function, so both sides are measured the same.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "datasets"
SEED = 42

Item = tuple[dict[str, str], dict[str, Any]]  # (fields, annotation), as the training loop takes


def quiet_transformers() -> None:
    """Silence transformers' load reports and progress bars so the tables stay readable."""
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


# -- arguments -----------------------------------------------------------------------------------

def default_base_model() -> str:
    """Return the bundled all-MiniLM-L6-v2 folder, or "" when it is not installed."""
    from annotune.core import base_model

    found = base_model.find()
    return str(found) if found is not None else ""


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --data-dir, --base-model, --train-limit, --eval-limit, --epochs, --device."""
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder holding sst2/, rte/, conll2003/, squad/ "
                             "(default: ../shared/datasets beside the repository)")
    parser.add_argument("--base-model", default=None,
                        help="base model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="use only the first N training examples (CPU subsets)")
    parser.add_argument("--eval-limit", type=int, default=None,
                        help="score only the first N held-out examples")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs for both sides (default: each recipe's own default)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")


def resolve_base_model(value: str | None) -> str:
    """Return an existing base model folder, or exit with a message saying what to pass."""
    folder = value or default_base_model()
    if not folder or not Path(folder).is_dir():
        sys.exit(f"base model folder {folder or '(bundled model)'!r} not found: pass "
                 "--base-model FOLDER (a save_pretrained folder with tokenizer.json)")
    return str(Path(folder).resolve())


def model_name(folder: str) -> str:
    """Name a base model folder for tables: the bundled model by name, others by folder."""
    if folder == str(Path(default_base_model() or "-").resolve()):
        return "all-MiniLM-L6-v2 (bundled)"
    return Path(folder).name


def check_data_dir(data_dir: Path, name: str) -> Path:
    folder = Path(data_dir) / name
    if not folder.is_dir():
        sys.exit(f"data set folder {folder} not found: pass --data-dir pointing at the folder "
                 "that holds sst2/, rte/, conll2003/ and squad/")
    return folder


# -- printing ------------------------------------------------------------------------------------

def run_child(command: list[str], prefix: str, echo_stderr: bool = False
              ) -> tuple[str | None, float, str]:
    """Run one measurement in its own process; return its ``prefix`` line, wall s, error.

    Each runtime is measured alone: sharing a process skews timings (thread pools,
    allocators). The child prints one line starting with ``prefix``; when it prints none,
    the last line of its output is returned as the error.
    """
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - started
    if echo_stderr:
        print(done.stderr, file=sys.stderr)
    for line in done.stdout.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):], wall, ""
    tail = (done.stderr or done.stdout).strip().splitlines()
    return None, wall, tail[-1] if tail else "failed"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain-text table with aligned columns."""
    cells = [[str(h) for h in header]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def print_json_line(kind: str, payload: dict[str, Any]) -> None:
    """Print the machine-readable result: one line starting with ``RESULT``."""
    print("RESULT " + json.dumps({"benchmark": kind, **payload}, sort_keys=True, default=str))


def hardware() -> dict[str, Any]:
    """Describe the machine: CPU model and cores, and the GPU when torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cpu_cores": os.cpu_count(),
                            "python": platform.python_version()}
    if hasattr(os, "getloadavg"):  # other work on the machine skews CPU timings: say so
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    if "torch" in sys.modules:
        import torch
        import transformers
        info["torch"] = torch.__version__
        info["transformers"] = transformers.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


class Timer:
    """Measure wall time of a block: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start


# -- data sets -----------------------------------------------------------------------------------

@dataclass
class BenchData:
    """One benchmark data set: the task, its settings, and the fixed train/held-out split."""

    key: str  # sst2, rte, conll2003, squad
    task: Any
    settings: Any
    train: list[Item]
    test: list[Item]
    notes: list[str] = field(default_factory=list)


SST2_LABELS = ("negative", "positive")  # GLUE: 0 negative, 1 positive
RTE_LABELS = ("entailment", "not_entailment")  # GLUE: 0 entailment, 1 not_entailment
CONLL_TYPES = ("PER", "ORG", "LOC", "MISC")
HELD_OUT_FRACTION = 0.2  # rte and squad ship one file: this much of it is held out


def default_settings(task: Any, labels: Sequence[str] = ()) -> Any:
    """Return the task's default settings for a new project, with the given labels."""
    from annotune.core.tasks import TaskSettings
    base = task.default_settings() if hasattr(task, "default_settings") else TaskSettings()
    return base.with_(labels=tuple(labels)) if labels else base


def _importer_for(names: Sequence[str], extension: str) -> Any | None:
    """Find a registered importer by name, else by file extension; None when none is there."""
    from annotune.core.plugins import registry
    importers = registry().importers
    for name in names:
        if name in importers:
            return importers[name]
    for importer in importers.values():
        if extension in getattr(importer, "extensions", ()):
            return importer
    return None


def import_items(path: Path, task: Any, settings: Any, names: Sequence[str],
                 mapping: dict[str, str] | None = None) -> list[Item] | None:
    """Read a file with annotune's importer into (fields, annotation) items; None: no importer."""
    from annotune.core.formats.base import ImportNote, ImportOptions, RowProblem
    importer = _importer_for(names, path.suffix)
    if importer is None:
        return None
    items: list[Item] = []
    problems: list[str] = []
    options = ImportOptions(mapping=mapping or {})
    for record in importer.read(path, task, settings, options):
        if isinstance(record, ImportNote):  # a note on the file (delimiter, unused column)
            print(f"{path.name}: {record}", file=sys.stderr)
            continue
        if isinstance(record, RowProblem):
            problems.append(f"{path.name}:{record.line}: {record.message}")
            continue
        if record.annotation is None:
            problems.append(f"{path.name}:{record.line}: no annotation")
            continue
        annotation = task.validate(record.annotation, record.fields, settings)
        items.append((dict(record.fields), annotation))
    if problems:
        raise SystemExit(f"annotune's '{importer.name}' importer reported {len(problems)} "
                         f"problem(s) in {path}, first: {problems[0]}")
    return items


def _read_tsv(path: Path, quoting: int) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=quoting))


def _check_count(items: list[Item], expected: int, path: Path, notes: list[str]) -> None:
    """Compare the importer's count with a plain reading of the file; stop on a mismatch."""
    if len(items) != expected:
        raise SystemExit(f"annotune's importer read {len(items)} examples from {path}, a plain "
                         f"reading finds {expected}: the importer needs fixing")
    notes.append(f"{path.name}: {len(items)} examples read by annotune's importer")


def load_classification(path: Path, task: Any, settings: Any, text_columns: Sequence[str],
                        quoting: int, notes: list[str]) -> list[Item]:
    """Read a GLUE TSV through the tabular importer (plain csv when no importer is there)."""
    rows = _read_tsv(path, quoting)
    fields = task.fields
    mapping = {name: column for name, column in zip(fields, text_columns, strict=True)}
    mapping["label"] = "label"
    items = import_items(path, task, settings, ("tsv", "csv"), mapping)
    if items is not None:
        _check_count(items, len(rows), path, notes)
        return items
    notes.append(f"{path.name}: no TSV importer registered, read with the csv module")
    return [({name: row[column] for name, column in zip(fields, text_columns, strict=True)},
             task.annotation_from_value(row["label"], settings)) for row in rows]


def _conll_sentences(path: Path) -> list[tuple[list[str], list[str]]]:
    sentences, words, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        words.append(parts[0])
        tags.append(parts[-1])
    return sentences


def load_conll(path: Path, task: Any, settings: Any, notes: list[str]) -> list[Item]:
    """Read a CoNLL-2003 file through annotune's CoNLL importer (plain reader as a fallback)."""
    sentences = _conll_sentences(path)
    items = import_items(path, task, settings, ("conll",))
    if items is not None:
        _check_count(items, len(sentences), path, notes)
        return items
    from annotune.plugins.spans import tags_to_chunks
    notes.append(f"{path.name}: no CoNLL importer registered, read with a plain reader")
    items = []
    for words, tags in sentences:
        starts, position = [], 0
        for word in words:
            starts.append(position)
            position += len(word) + 1
        spans = [{"start": starts[a], "end": starts[b - 1] + len(words[b - 1]), "label": label}
                 for label, a, b in tags_to_chunks(tags)]
        items.append(({"text": " ".join(words)}, {"spans": spans}))
    return items


def load_squad(path: Path, task: Any, settings: Any, notes: list[str]
               ) -> tuple[list[Item], list[int]]:
    """Read SQuAD JSON through annotune's importer; return items and questions per article."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    per_article = [sum(len(p["qas"]) for p in article["paragraphs"]) for article in data]
    items = import_items(path, task, settings, ("squad",))
    if items is not None:
        _check_count(items, sum(per_article), path, notes)
        return items, per_article
    notes.append(f"{path.name}: no SQuAD importer registered, read with the json module")
    items = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [{"start": a["answer_start"], "text": a["text"]} for a in qa["answers"]]
                items.append(({"context": paragraph["context"], "question": qa["question"]},
                              {"answers": answers}))
    return items, per_article


def _hold_out(items: list[Item], fraction: float) -> tuple[list[Item], list[Item]]:
    """Split items at random (fixed seed) into train and held-out parts."""
    order = list(range(len(items)))
    random.Random(SEED).shuffle(order)
    cut = round(len(items) * fraction)
    held = set(order[:cut])
    return ([item for i, item in enumerate(items) if i not in held],
            [item for i, item in enumerate(items) if i in held])


def load_bench_data(key: str, data_dir: Path, train_limit: int | None = None,
                    eval_limit: int | None = None) -> BenchData:
    """Load one data set with its fixed split: sst2, rte, conll2003 or squad."""
    from annotune.core.plugins import registry
    notes: list[str] = []
    if key == "sst2":
        folder = check_data_dir(data_dir, "sst2")
        task = registry().task("text-classification")
        settings = default_settings(task, SST2_LABELS)
        train = load_classification(folder / "train.tsv", task, settings, ("sentence",),
                                    csv.QUOTE_NONE, notes)
        test = load_classification(folder / "dev.tsv", task, settings, ("sentence",),
                                   csv.QUOTE_NONE, notes)
        notes.append("split: train.tsv -> train, dev.tsv -> held-out")
    elif key == "rte":
        folder = check_data_dir(data_dir, "rte")
        task = registry().task("pair-classification")
        settings = default_settings(task, RTE_LABELS)
        items = load_classification(folder / "train.tsv", task, settings,
                                    ("sentence1", "sentence2"), csv.QUOTE_MINIMAL, notes)
        train, test = _hold_out(items, HELD_OUT_FRACTION)
        notes.append(f"split: train.tsv, {HELD_OUT_FRACTION:.0%} held out at random "
                     f"(seed {SEED})")
    elif key == "conll2003":
        folder = check_data_dir(data_dir, "conll2003")
        task = registry().task("token-classification")
        settings = default_settings(task, CONLL_TYPES)
        train = load_conll(folder / "train.txt", task, settings, notes)
        test = load_conll(folder / "valid.txt", task, settings, notes)
        notes.append("split: train.txt -> train, valid.txt -> held-out")
    elif key == "squad":
        folder = check_data_dir(data_dir, "squad")
        task = registry().task("question-answering")
        settings = default_settings(task)
        path = folder / "squad-v1.1-articles-a.json"
        items, per_article = load_squad(path, task, settings, notes)
        # split by article, never by question: questions on one paragraph would leak
        n_test_articles = max(1, round(len(per_article) * HELD_OUT_FRACTION))
        cut = sum(per_article[:len(per_article) - n_test_articles])
        train, test = items[:cut], items[cut:]
        notes.append(f"split by article: first {len(per_article) - n_test_articles} articles "
                     f"-> train, last {n_test_articles} -> held-out")
    else:
        raise SystemExit(f"unknown data set {key!r}")
    if train_limit is not None:
        train = train[:train_limit]
    if eval_limit is not None:
        test = test[:eval_limit]
    return BenchData(key, task, settings, train, test, notes)


# -- annotune scoring ----------------------------------------------------------------------------

def pick_device(name: str) -> Any:
    """Return the torch device for --device (auto: CUDA when available)."""
    import torch
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")


def predict_torch(model_dir: Path, task: Any, settings: Any, items: Sequence[Item],
                  device: Any, batch_size: int = 64) -> list[dict[str, Any]]:
    """Predict with a saved transformers checkpoint through the task's encode and decode."""
    import numpy as np
    import torch
    import transformers

    from annotune.core.features import (
        collate,
        length_sorted_batches,
        pad_id,
        prepare_tokenizer,
        split_outputs,
    )
    from annotune.core.training import pooling  # noqa: F401 (registers its model type)
    tokenizer = prepare_tokenizer(Path(model_dir) / "tokenizer.json")
    model = getattr(transformers, task.auto_model).from_pretrained(
        str(model_dir), dtype=torch.float32)
    model.to(device).eval()
    examples = [fields for fields, _ in items]
    features = task.encode(tokenizer, examples, None, settings)
    outputs: list[Any] = [None] * len(features)
    pad = pad_id(tokenizer)
    with torch.inference_mode():
        for batch in length_sorted_batches(features, batch_size):
            chosen = [features[i] for i in batch]
            arrays = collate(chosen, pad)
            tensors = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
            result = model(**tensors)
            raw = {name: result[name].float().cpu().numpy() for name in task.output_names}
            for i, out in zip(batch, split_outputs(raw, chosen, task.sequence_outputs),
                              strict=True):
                outputs[i] = {k: np.asarray(v) for k, v in out.items()}
    return task.decode(examples, features, outputs, settings)


def score(task: Any, settings: Any, predictions: Sequence[dict[str, Any]],
          items: Sequence[Item]) -> dict[str, Any]:
    """Score predictions with the task's own metric function; keep only scalar figures."""
    metrics = task.metrics(predictions, [annotation for _, annotation in items], settings)
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)}
