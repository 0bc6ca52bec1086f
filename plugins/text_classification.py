"""Text classification: one label per text, or a set of labels (multi-label projects)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from annotune.core.hookspecs import hookimpl
from annotune.core.tasks import Task
from annotune.plugins.classification import ClassificationTask
from annotune.plugins.label_scores import ProbabilityLabelCheck


class TextClassificationTask(ProbabilityLabelCheck, ClassificationTask):
    """Classify a single text; multi-label projects use sigmoid outputs and thresholds."""

    name: ClassVar[str] = "text-classification"
    title: ClassVar[str] = "Text classification"
    fields: ClassVar[tuple[str, ...]] = ("text",)


@hookimpl
def register_tasks(register: Callable[[Task], None]) -> None:
    """Register the text-classification task."""
    register(TextClassificationTask())
