"""Keep the best epoch's checkpoint, and say when patience has run out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from annotune.core.tasks import TaskSettings
from annotune.core.training.selection import Candidate, EpochChoice


class BestEpoch:
    """The epoch kept so far (None before one scored), its metrics and settings.

    A later epoch wins only by more than the validation set's noise; within it the lower
    validation loss decides (selection.py), so the kept model is the confident one, not one
    a few lucky examples picked.
    """

    def __init__(self, choice: EpochChoice, settings: TaskSettings, save: Callable[[], None]):
        self.choice, self.save = choice, save
        self.epoch: int | None = None
        self.metrics: dict[str, Any] = {}
        self.settings = settings

    def consider(self, candidate: Candidate, metrics: dict[str, Any],
                 settings: TaskSettings) -> tuple[bool, str]:
        """Keep ``candidate`` (saving its checkpoint) when it wins; return (kept, why)."""
        kept, why = self.choice.consider(candidate)
        if kept:
            self.epoch, self.metrics, self.settings = candidate.epoch, metrics, settings
            self.save()
        return kept, why

    def patience_spent(self, epoch: int, patience: int | None) -> bool:
        """True when ``patience`` epochs passed without a better one (0 or None: never)."""
        # no best yet: a NaN score counts as none, so the count runs from the start
        if not patience:
            return False
        return epoch - (self.epoch or 0) >= patience
