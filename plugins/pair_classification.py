"""Sentence-pair classification (NLI, paraphrase): one label per pair of texts."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from annotune.core.hookspecs import hookimpl
from annotune.core.tasks import Task, TaskOption
from annotune.plugins.classification import ClassificationTask
from annotune.plugins.label_scores import ProbabilityLabelCheck


class PairClassificationTask(ProbabilityLabelCheck, ClassificationTask):
    """Classify a pair of texts encoded together as ``[CLS] text [SEP] text_pair [SEP]``.

    When a pair is too long the longer text is trimmed first, so a long premise does not
    crowd out the short hypothesis that decides the label.
    """

    name: ClassVar[str] = "pair-classification"
    title: ClassVar[str] = "Sentence-pair classification"
    fields: ClassVar[tuple[str, ...]] = ("text", "text_pair")
    options: ClassVar[tuple[TaskOption, ...]] = ()  # one label per pair: no multi-label mode
    field_titles: ClassVar[dict[str, str]] = {"text": "First text (premise)",
                                              "text_pair": "Second text (hypothesis)"}
    labels_example: ClassVar[str] = "entailment, neutral, contradiction"


@hookimpl
def register_tasks(register: Callable[[Task], None]) -> None:
    """Register the sentence-pair classification task."""
    register(PairClassificationTask())
