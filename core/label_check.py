"""Find labels that are probably wrong: k-fold out-of-fold predictions ranked per task.

Each example is held out exactly once: the training loop (core/training/loop.py ``train``)
fine-tunes a model on the other folds, that model predicts the held-out fold, and the task
scores the given annotation against those raw outputs (``Task.label_issues``; the scores are
in plugins/label_scores.py). Examples are ranked by score, highest first: the annotations
the models most disagree with. Folds are stratified by ``Task.stratify_key`` and keep every
``Task.fold_group`` (a QA context) whole.

This module imports no torch at module level (the desktop and the CLI import it to start
a check in a child process: core/label_check_job.py); ``find_label_issues`` imports the loop.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.events import Emit, Event, FoldStarted
from annotune.core.tasks import Annotation, ExampleFields, LabelIssue, Task, TaskSettings

DEFAULT_FOLDS = 5
# Fewer passes than a real training: each fold only has to rank, not to ship (docs/label-errors.md)
CHECK_EPOCHS = 3


@dataclass
class RankedIssue:
    """One checked example: its position in the project and what the task found."""

    example_id: int
    annotation: Annotation
    issue: LabelIssue
    fold: int


def assign_folds(keys: Sequence[str], k: int, seed: int = 42,
                 groups: Sequence[str | None] | None = None) -> list[int]:
    """Return a fold in ``range(k)`` for every example: stratified by key, groups kept whole.

    Without groups, each key's examples are shuffled and dealt round the folds, starting where
    the previous key stopped, so every fold gets a near-equal share of every key and folds
    differ in size by at most one. A group (examples with the same non-None value) is dealt
    as one unit, to the fold with the fewest examples so far.
    """
    n = len(keys)
    if k < 2:
        raise AnnotuneError(f"a label check needs at least 2 folds, not {k}",
                            hint="pass --folds 2 or more (5 is usual)")
    if n < 2 * k:
        raise AnnotuneError(f"{k} folds need at least {2 * k} labeled examples, the project "
                            f"has {n}", hint="label more examples, or pass fewer --folds")
    rng = random.Random(seed)
    units: dict[tuple[str, Any], list[int]] = defaultdict(list)
    for index in range(n):
        group = groups[index] if groups is not None else None
        units[("group", group) if group is not None else ("one", index)].append(index)
    folds = [0] * n
    if all(kind == "one" for kind, _ in units):
        by_key: dict[str, list[int]] = defaultdict(list)
        for index, key in enumerate(keys):
            by_key[key].append(index)
        position = 0
        for key in sorted(by_key):
            members = by_key[key]
            rng.shuffle(members)
            for index in members:
                folds[index] = position % k
                position += 1
        return folds
    ordered = list(units.values())
    rng.shuffle(ordered)
    ordered.sort(key=len, reverse=True)  # large groups first: the greedy fill stays even
    sizes = [0] * k
    for members in ordered:
        fold = min(range(k), key=lambda f: (sizes[f], f))
        for index in members:
            folds[index] = fold
        sizes[fold] += len(members)
    if 0 in sizes:
        raise AnnotuneError(f"the labeled examples form fewer than {k} separate groups",
                            hint="pass fewer --folds")
    return folds


def frozen_check_supports(task: Task) -> bool:
    """Say whether the frozen-encoder check can score this task (one ``logits`` output).

    Torch-free, so the desktop can offer the fast check only where it runs
    (core/label_check_heads.py does the work).
    """
    return tuple(task.output_names) == ("logits",)


def rank(issues: Sequence[RankedIssue]) -> list[RankedIssue]:
    """Order checked examples from most to least suspect (ties: lower example id first)."""
    return sorted(issues, key=lambda r: (-r.issue.score, r.example_id))


def with_fold(event: Event, fold: int, folds: int) -> Event:
    """Return a fold's training event tagged with the fold and the folds, as a copy.

    Only the kinds the training loop writes carry a fold; any other passes unchanged.
    """
    if (event["event"] == "progress" or event["event"] == "metrics"
            or event["event"] == "precision" or event["event"] == "memory"):
        tagged = event.copy()
        tagged["fold"], tagged["folds"] = fold, folds
        return tagged
    return event


def find_label_issues(task: Task, settings: TaskSettings, config: Any,
                      items: Sequence[tuple[int, ExampleFields, Annotation]], folds: int,
                      emit: Emit | None = None, should_stop: Callable[[], bool] | None = None,
                      work_dir: str | Path | None = None) -> list[RankedIssue]:
    """Score every item out of fold and return them ranked, most suspect first.

    ``items`` are (example id, fields, annotation); ``config`` is a TrainConfig for each
    fold's training. ``emit`` receives ``{"event": "fold", "fold", "folds", ...}`` before each
    fold and the loop's own events with ``fold`` added. A stop (``should_stop``) ends the
    check with ``Cancelled`` from the loop module. With ``config.freeze_encoder`` the encoder
    runs once and only a head is fitted per fold (core/label_check_heads.py: much cheaper).
    """
    from annotune.core.training.loop import Cancelled, train

    emit = emit or (lambda event: None)
    keys = [task.stratify_key(annotation) for _, _, annotation in items]
    groups = [task.fold_group(fields) for _, fields, _ in items]
    assignment = assign_folds(keys, folds, config.seed, groups)
    if config.freeze_encoder:
        from annotune.core import label_check_heads

        found = label_check_heads.out_of_fold(task, settings, config, items, assignment, folds,
                                              emit, should_stop)
        return rank([RankedIssue(items[i][0], items[i][2], issue, assignment[i] + 1)
                     for i, issue in found])
    owned = work_dir is None
    root = Path(tempfile.mkdtemp(prefix="annotune-check-")) if work_dir is None else Path(work_dir)
    results: list[RankedIssue] = []
    started = time.perf_counter()
    try:
        for fold in range(folds):
            held = [i for i, f in enumerate(assignment) if f == fold]
            training = [(items[i][1], items[i][2]) for i, f in enumerate(assignment) if f != fold]
            emit(FoldStarted(event="fold", fold=fold + 1, folds=folds,
                             train_examples=len(training), held_out=len(held),
                             elapsed_s=round(time.perf_counter() - started, 1)))

            def relay(event: Event, fold: int = fold) -> None:
                emit(with_fold(event, fold + 1, folds))

            out_dir = root / f"fold-{fold + 1}"
            result = train(task, settings, config, training, None, out_dir, relay,
                           should_stop, progress_interval=1.0)
            if result.status == "cancelled" or result.artifact_dir is None:
                raise Cancelled()
            issues = score_held_out(task, result.settings or settings, config,
                                    result.artifact_dir,
                                    [items[i][1] for i in held], [items[i][2] for i in held],
                                    should_stop)
            results.extend(RankedIssue(items[i][0], items[i][2], issue, fold + 1)
                           for i, issue in zip(held, issues, strict=True))
            if owned:
                shutil.rmtree(out_dir, ignore_errors=True)  # a fold's checkpoint is done with
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)
    return rank(results)


def score_held_out(task: Task, settings: TaskSettings, config: Any, model_dir: Path,
                   fields: Sequence[ExampleFields], annotations: Sequence[Annotation],
                   should_stop: Callable[[], bool] | None = None) -> list[LabelIssue]:
    """Run a fold's checkpoint over its held-out examples; let the task score their labels."""
    import transformers

    from annotune.core.features import pad_id, prepare_tokenizer
    from annotune.core.training.device import choose_device
    from annotune.core.training.loop import predict
    from annotune.core.training.model import model_inputs

    device = choose_device(config)
    model = getattr(transformers, task.auto_model).from_pretrained(model_dir).to(device)
    tokenizer = prepare_tokenizer(model_dir / "tokenizer.json")
    features = task.encode(tokenizer, [dict(f) for f in fields], None, settings)
    outputs, _ = predict(model, task, features, pad_id(tokenizer), device, None,
                         config.eval_batch_size, model_inputs(model), should_stop)
    return task.label_issues(fields, annotations, features, outputs, settings)
