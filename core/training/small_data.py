"""Give small training sets enough optimizer steps to learn from a few dozen labels.

TrainConfig's one-click defaults (10 epochs of batch 16, early stopping after 3 epochs
without gain) were tuned on about 2,000 labeled examples. On 16 examples the same numbers
make 10 optimizer steps, most of them in the warm-up, and a patience of 3 epochs is 3 steps:
the run ends before the new head has learned anything (SST-2 with 8 labeled sentences per
class: 54 % accuracy, barely above chance; docs/label-efficiency.md). So, when the training
set is small and the options are still the defaults, a run gets at least MIN_STEPS optimizer
steps: more epochs (at most MAX_EPOCHS), with the early-stopping patience kept at the same
share of the run.

An option the person changed is never overridden (a value different from TrainConfig's
default counts as changed), and ``TrainConfig(small_data=False)`` switches all of it off.
What changed is recorded in run.json ("small_data"), so a run says why it ran longer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from annotune.core.training.config import TrainConfig

MIN_STEPS = 200  # optimizer steps a small training set gets at least
MAX_EPOCHS = 100  # however small the set: 8 examples are not worth 25 steps per example


@dataclass(frozen=True)
class SmallDataPlan:
    """What the small-data defaults changed for one run, recorded in run.json."""

    train_features: int
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # option: (default, used)

    def record(self) -> dict[str, Any]:
        """Return the plan as run.json stores it."""
        return {"train_features": self.train_features,
                "changed": {k: {"default": a, "used": b} for k, (a, b) in self.changed.items()}}


def adapt(config: TrainConfig, train_features: int) -> tuple[TrainConfig, SmallDataPlan | None]:
    """Return the config to train with and what changed (None: nothing to adapt)."""
    defaults = TrainConfig()
    steps_per_epoch = math.ceil(train_features / config.batch_size)
    if (not config.small_data or config.epochs != defaults.epochs
            or steps_per_epoch * config.epochs >= MIN_STEPS):
        return config, None
    epochs = min(MAX_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))
    changed: dict[str, tuple[Any, Any]] = {"epochs": (config.epochs, epochs)}
    patience = config.early_stopping_patience
    if patience and patience == defaults.early_stopping_patience:
        longer = math.ceil(patience * epochs / config.epochs)
        changed["early_stopping_patience"] = (patience, longer)
    plan = SmallDataPlan(train_features, changed)
    return config.with_(**{k: used for k, (_, used) in changed.items()}), plan
