"""Choose the automatic validation split: stratified by label, whole groups on one side.

A validation example whose twin trains (another question on the same paragraph, a sentence of
the same news story, a phrase cut from the same review sentence) is graded on what training
showed: on SQuAD, validation F1 read 71.6 where unseen articles gave 50.5. So the split keeps
each group of ``Task.group_keys`` on one side, and still follows the label mix (each label's
share of validation is ``fraction`` of its examples, within what whole groups allow).

When the task's groups are too coarse to give validation at least half its intended size (a
project of three documents), the split falls back to near-duplicate texts (the default
``Task.group_keys``), then to single examples, and the run record says so.

Torch-free: the training job chooses the split before the loop starts.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.tasks import ExampleOrigin, Task

# One labeled example as the loop receives it: (fields, annotation).
Item = tuple[Mapping[str, str], dict[str, Any]]

ENOUGH = 0.5  # a grouped validation smaller than this share of its target is not used


@dataclass
class ValidationSplit:
    """Training and validation items, and how validation was chosen (kept in run.json)."""

    train: list[Item]
    validation: list[Item]
    record: dict[str, Any] = field(default_factory=dict)


def choose_validation(items: Sequence[Item], task: Task, fraction: float, seed: int,
                      origins: Sequence[ExampleOrigin] | None = None) -> ValidationSplit:
    """Hold out about ``fraction`` of the items, stratified by label, whole groups together.

    Every label of two or more examples gives at least one to validation and keeps at least
    one for training, when its groups allow. The same items, origins and seed always give the
    same split.
    """
    if len(items) < 2:
        raise AnnotuneError(f"training needs at least 2 labeled examples, the project has "
                            f"{len(items)}", hint="label more examples first")
    strata = [task.stratify_key(annotation) for _, annotation in items]
    fields = [dict(example) for example, _ in items]
    targets = _targets(strata, fraction)
    wanted = sum(targets.values())
    attempts = [("task", lambda: task.group_keys(fields, origins)),
                ("near-duplicate texts", lambda: Task.group_keys(task, fields)),
                ("single examples", lambda: [f"example:{i}" for i in range(len(items))])]
    if type(task).group_keys is Task.group_keys:  # the task's own keys are the default ones
        del attempts[1]
    fallback = None
    task_keys: list[str] | None = None
    for name, make_keys in attempts:
        keys = _checked(make_keys(), len(items), task)
        task_keys = task_keys or keys
        if not wanted:  # only one-example labels: validate on one of them, alone in its group
            alone = [i for i, n in enumerate(Counter(keys)[key] for key in keys) if n == 1]
            if alone or name == "single examples":
                held = {random.Random(seed).choice(alone or range(len(items)))}
                break
        else:
            held = _held_out(strata, keys, targets, seed)
            if len(held) >= max(1.0, ENOUGH * wanted) or name == "single examples":
                break
        fallback = (f"the {_kinds(keys)} groups are too large to hold out about "
                    f"{fraction:.0%} of the examples in whole groups")
    train = [item for i, item in enumerate(items) if i not in held]
    validation = [item for i, item in enumerate(items) if i in held]
    # what validation shares with training is judged by the task's own groups, fallback or not
    record = describe_groups(task_keys or keys, held)
    record.update(method="automatic", fraction=fraction, seed=seed, fallback=fallback,
                  split_by=_kinds(keys))
    return ValidationSplit(train, validation, record)


def _checked(keys: Sequence[str], n: int, task: Task) -> list[str]:
    keys = [str(key) for key in keys]
    if len(keys) != n:
        raise AnnotuneError(f"task '{task.name}' returned {len(keys)} group keys for {n} "
                            "examples", hint="the task plugin's group_keys() must key every "
                                             "example")
    return keys


def describe_given_split(train: Sequence[Item], validation: Sequence[Item], task: Task,
                         origins: Sequence[ExampleOrigin] | None = None) -> dict[str, Any]:
    """Describe a validation split the project chose: how many examples share a group with
    training (those scores flatter the model).

    ``origins`` covers training items first, then validation items.
    """
    fields = [dict(example) for example, _ in [*train, *validation]]
    keys = _checked(task.group_keys(fields, origins), len(fields), task)
    held = set(range(len(train), len(train) + len(validation)))
    record = describe_groups(keys, held)
    record.update(method="the project's validation split")
    return record


def describe_groups(keys: Sequence[str], held: set[int]) -> dict[str, Any]:
    """Count groups, their kinds and the validation examples whose group also trains."""
    sizes = Counter(keys)
    held_keys = {keys[i] for i in held}
    trained_keys = {key for i, key in enumerate(keys) if i not in held}
    return {
        "grouped_by": _kinds(keys),
        "groups": len(sizes),
        "examples_in_shared_groups": sum(n for n in sizes.values() if n > 1),
        "largest_group": max(sizes.values(), default=0),
        "validation_groups": len(held_keys),
        "validation_examples_sharing_a_group_with_training": sum(
            1 for i in held if keys[i] in trained_keys),
    }


def _kinds(keys: Sequence[str]) -> str:
    """Name the kinds of group keys ("context", "document and text") by frequency."""
    kinds = Counter(key.split(":", 1)[0] for key in keys)
    names = [kind for kind, _ in kinds.most_common()]
    return " and ".join(names) if len(names) <= 2 else ", ".join(names)


def _targets(strata: Sequence[str], fraction: float) -> dict[str, int]:
    """Return how many examples of each label validation should hold."""
    counts = Counter(strata)
    return {key: 0 if n < 2 else min(max(1, round(n * fraction)), n - 1)
            for key, n in counts.items()}


def _held_out(strata: Sequence[str], keys: Sequence[str], targets: Mapping[str, int],
              seed: int) -> set[int]:
    """Pick whole groups, in a seeded random order, while they fill the labels' targets.

    A group joins validation when more of it fills labels still short of their target than
    overshoots, and never when it would leave a label without training examples.
    """
    members: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        members[key].append(index)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    missing = dict(targets)
    training = Counter(strata)
    held: set[int] = set()
    for key in order:
        counts = Counter(strata[i] for i in members[key])
        fill = sum(min(n, max(missing[label], 0)) for label, n in counts.items())
        if fill * 2 <= len(members[key]):
            continue
        if any(training[label] - n < 1 for label, n in counts.items()):
            continue
        for label, n in counts.items():
            missing[label] -= n
            training[label] -= n
        held.update(members[key])
    return held


@dataclass
class LabeledItems:
    """A project's accepted annotations as training items, with where each example came from."""

    train: list[Item] = field(default_factory=list)
    validation: list[Item] = field(default_factory=list)
    train_origins: list[ExampleOrigin] = field(default_factory=list)
    validation_origins: list[ExampleOrigin] = field(default_factory=list)


def labeled_items(project: Any) -> LabeledItems:
    """Return the project's accepted annotations as (fields, annotation) items, in id order.

    The examples' split decides; examples of no split train; the test split is left out.
    An empty validation list asks for the automatic split (``project_split``).
    """
    labeled = LabeledItems()
    for example, annotation in project.labeled():
        if example.split == "test":
            continue
        origin = ExampleOrigin(source=example.source, line=example.line,
                               source_id=example.source_id, meta=example.meta or {})
        if example.split == "validation":
            labeled.validation.append((dict(example.fields), annotation))
            labeled.validation_origins.append(origin)
        else:
            labeled.train.append((dict(example.fields), annotation))
            labeled.train_origins.append(origin)
    return labeled


def project_split(labeled: LabeledItems, task: Task, fraction: float, seed: int
                  ) -> ValidationSplit:
    """Split a project's items: its own validation split, or the automatic one by group."""
    if labeled.validation:
        record = describe_given_split(labeled.train, labeled.validation, task,
                                      [*labeled.train_origins, *labeled.validation_origins])
        return ValidationSplit(list(labeled.train), list(labeled.validation), record)
    return choose_validation(labeled.train, task, fraction, seed, labeled.train_origins)
