"""The Task contract: what differs between downstream tasks, and the small types it speaks in.

A task plugin module imports only numpy and tokenizers (never torch, transformers or Qt): the
same Task object serves the training loop, export and the torch-free Predictor.

Data flow through a Task::

    example fields + annotation --validate--> stored annotation (the task's own JSON form)
    examples (+ annotations) --encode(tokenizer)--> list[Feature]   (one or more windows each)
    features --core.features.collate--> padded numpy batch --model--> raw outputs per feature
    raw outputs per feature --decode--> one prediction dict per example
    predictions + annotations --metrics--> {"<main_metric>": ..., ...}
    examples (+ where they came from) --group_keys--> which examples the validation split
                                                      keeps together (one side only)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np

from annotune.core.errors import AnnotuneError
from annotune.core.near_duplicates import near_duplicate_groups

# Fewer documents than this cannot give a validation split of about 10 % in whole documents
# with a sensible label mix: tasks then group by finer units (paragraphs, sentences).
DOCUMENTS_TO_GROUP = 10

Annotation = dict[str, Any]
Prediction = dict[str, Any]
ExampleFields = Mapping[str, str]


@dataclass(frozen=True)
class TaskSettings:
    """Project-level task options; stored in the project and copied into every bundle."""

    labels: tuple[str, ...] = ()
    multi_label: bool = False  # classification: several labels per example (sigmoid)
    thresholds: tuple[float, ...] = ()  # multi-label: one decision threshold per label
    max_length: int = 128  # tokens per window, special tokens included
    stride: int = 128  # tokens shared by consecutive windows of a long text (QA doc_stride)
    allow_unanswerable: bool = False  # QA: SQuAD v2 style "no answer"
    max_answer_length: int = 30  # QA: tokens
    n_best: int = 20  # QA: start/end candidates per window

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TaskSettings:
        """Build settings from stored JSON, ignoring unknown keys from newer versions."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        clean = {k: v for k, v in data.items() if k in known}
        for key in ("labels", "thresholds"):
            if key in clean:
                clean[key] = tuple(clean[key])
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["thresholds"] = list(self.thresholds)
        return data

    def with_(self, **changes: Any) -> TaskSettings:
        return replace(self, **changes)

    def threshold(self, label_index: int) -> float:
        if label_index < len(self.thresholds):
            return float(self.thresholds[label_index])
        return 0.5


@dataclass
class Feature:
    """One model input window cut from one example.

    ``offsets[i]`` are character offsets of token i in the field it came from
    (``sequence_ids[i]`` says which field: 0 first text, 1 second text, None special token).
    ``target`` is whatever the task trains on (an int, a float vector, per-token ids,
    a (start, end) pair); None at inference.
    """

    example_index: int
    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int]] = field(default_factory=list)
    sequence_ids: list[int | None] = field(default_factory=list)
    target: Any = None
    truncated: bool = False  # part of the example's text is in no window (reported, not hidden)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class LabelIssue:
    """How much out-of-fold models disagree with one example's given annotation.

    ``score`` in [0, 1]: higher means the given annotation is more likely wrong (0: the models
    agree with it). ``suggestion`` is the annotation the models propose instead (None when they
    propose nothing). ``reasons`` are small JSON objects saying what disagrees, e.g.
    ``{"kind": "type", "start": 0, "end": 5, "given": "PER", "suggested": "LOC", "score": 0.9}``.
    """

    score: float
    suggestion: Annotation | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ExampleOrigin:
    """Where a stored example came from: what ``Task.group_keys`` may group by.

    ``meta`` is what the importer kept (CoNLL: the ``-DOCSTART-`` lines before a sentence;
    SQuAD: the article's title and index).
    """

    source: str | None = None
    line: int | None = None
    source_id: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


def by_document(documents: Sequence[str | None], finer: Sequence[str]) -> list[str]:
    """Return ``"document:<id>"`` keys where documents are known and numerous, else ``finer``.

    ``documents`` holds one document id (or None, unknown) per example; with fewer than
    DOCUMENTS_TO_GROUP distinct ids every example keeps its ``finer`` key.
    """
    if len({d for d in documents if d is not None}) < DOCUMENTS_TO_GROUP:
        return list(finer)
    return [f"document:{d}" if d is not None else key for d, key in zip(documents, finer,
                                                                        strict=True)]


class Task:
    """Base class of every task plugin; subclasses set the class attributes and override methods.

    Register an instance from a plugin module::

        @hookimpl
        def register_tasks(register):
            register(MyTask())
    """

    name: ClassVar[str]  # stable id stored in projects and bundles: "text-classification"
    title: ClassVar[str]  # shown to people, e.g. "Text classification"
    annotation_kind: ClassVar[str]  # which desktop editor labels it: "label", "spans", "answers"
    fields: ClassVar[tuple[str, ...]]  # text fields of an example, main text first
    auto_model: ClassVar[str]  # transformers Auto class that builds the model
    output_names: ClassVar[tuple[str, ...]] = ("logits",)  # ONNX outputs, in model order
    sequence_outputs: ClassVar[bool] = False  # True when outputs have one row per token
    main_metric: ClassVar[str]  # metric that picks the best epoch (higher is better)
    metric_scale: ClassVar[float] = 1.0  # 100 for metrics reported in percent (SQuAD EM/F1)
    needs_labels: ClassVar[bool] = True  # project must declare a label set
    supports_multi_label: ClassVar[bool] = False  # several labels per example (sigmoid head)
    supports_unanswerable: ClassVar[bool] = False  # examples may have no answer (SQuAD v2)
    # what a person calls the project's labels, and an example, for forms and messages
    labels_title: ClassVar[str] = "Labels"
    labels_example: ClassVar[str] = "negative, positive"
    # fields a person types on one line (a question), asked for before the long ones
    short_fields: ClassVar[tuple[str, ...]] = ()
    field_titles: ClassVar[dict[str, str]] = {}  # headings shown above fields in the editor

    # -- annotations -------------------------------------------------------------------------
    def validate(self, annotation: Annotation, example: ExampleFields, settings: TaskSettings
                 ) -> Annotation:
        """Return the annotation in canonical form, or raise AnnotuneError saying what is wrong."""
        raise NotImplementedError

    def annotation_from_value(self, value: str, settings: TaskSettings) -> Annotation:
        """Turn a label cell of a table file (CSV/TSV/JSONL) into an annotation."""
        raise AnnotuneError(f"the {self.title} task takes no label column",
                            hint="import its annotations with a task-specific format")

    def annotation_to_record(self, annotation: Annotation) -> dict[str, Any]:
        """Flatten an annotation into the columns written by the JSONL/CSV data export."""
        return dict(annotation)

    def stratify_key(self, annotation: Annotation) -> str:
        """Group used to stratify the automatic validation split (e.g. the label)."""
        return ""

    def fold_group(self, example: ExampleFields) -> str | None:
        """Return what ties examples that must share a cross-validation fold (None: nothing).

        QA questions about one context share it, so no model has read the context's answers.
        """
        return None


    def group_keys(self, examples: Sequence[ExampleFields],
                   origins: Sequence[ExampleOrigin] | None = None) -> list[str]:
        """Return one key per example; examples with equal keys stay on one side of a split.

        A validation example whose twin sits in training is graded on what training showed,
        so its score flatters the model. Keys read ``"<kind>:<id>"``, the kind in words
        ("text", "context", "document"): the run record counts groups by kind. ``origins``
        (one per example, in the store's id order) is None when only the texts are known.
        Default: texts equal after folding case, accents, punctuation and spacing, or sharing
        at least 80 % of their words (core.near_duplicates), over all of the task's fields.
        """
        texts = ["\n".join(str(example.get(name, "")) for name in self.fields)
                 for example in examples]
        return [f"text:{group}" for group in near_duplicate_groups(texts)]

    # -- model -------------------------------------------------------------------------------
    def model_kwargs(self, settings: TaskSettings) -> dict[str, Any]:
        """Keyword arguments for ``AutoModelFor*.from_pretrained`` (num_labels, id2label...)."""
        return {}

    def encode(self, tokenizer: Any, examples: Sequence[ExampleFields],
               annotations: Sequence[Annotation] | None, settings: TaskSettings) -> list[Feature]:
        """Tokenize examples into features (windows); with annotations, attach training targets.

        ``tokenizer`` is a ``tokenizers.Tokenizer`` with padding and truncation switched off
        (core.features.prepare_tokenizer); the task does its own windowing.
        """
        raise NotImplementedError

    def collate_targets(self, targets: Sequence[Any], seq_len: int) -> dict[str, np.ndarray]:
        """Stack the targets of one batch into the arrays the model's forward() takes."""
        raise NotImplementedError

    def decode(self, examples: Sequence[ExampleFields], features: Sequence[Feature],
               outputs: Sequence[Mapping[str, np.ndarray]], settings: TaskSettings
               ) -> list[Prediction]:
        """Turn raw outputs (one mapping per feature, unpadded) into one prediction per example.

        Numpy only: evaluation after training and the ONNX Predictor both call this.
        """
        raise NotImplementedError

    def metrics(self, predictions: Sequence[Prediction], annotations: Sequence[Annotation],
                settings: TaskSettings) -> dict[str, Any]:
        """Score predictions against gold annotations; must include ``main_metric``."""
        raise NotImplementedError

    def prediction_score(self, prediction: Prediction) -> float:
        """Confidence in [0, 1] of a prediction, used for uncertainty ordering."""
        return float(prediction.get("score", 0.0))

    def tune_settings(self, predictions: Sequence[Prediction], annotations: Sequence[Annotation],
                      settings: TaskSettings) -> TaskSettings:
        """Return settings fitted on one epoch's validation predictions (default: unchanged).

        What is fitted travels with the checkpoint (run.json's settings), so export and
        inference decide as the validation score did: multi-label classification picks its
        per-label thresholds here.
        """
        return settings

    def label_issues(self, examples: Sequence[ExampleFields], annotations: Sequence[Annotation],
                     features: Sequence[Feature], outputs: Sequence[Mapping[str, np.ndarray]],
                     settings: TaskSettings) -> list[LabelIssue]:
        """Score each given annotation against the raw outputs of a model that never saw it.

        ``features``/``outputs`` are as for ``decode`` (the features encoded without targets).
        The default compares nothing and finds no issue; tasks override it (core/label_check.py
        ranks examples by the scores).
        """
        return [LabelIssue(0.0) for _ in examples]

    def default_settings(self) -> TaskSettings:
        """Return the settings a new project of this task starts from (before its labels)."""
        return TaskSettings()

    def training_advice(self, n_labeled: int) -> str | None:
        """Say what to expect from training on ``n_labeled`` examples, or None when fine.

        Shown before a training starts (CLI and train panel): a task whose models need far
        more data than a few hundred examples says so before anyone waits for a weak model.
        """
        return None

    def check_settings(self, settings: TaskSettings) -> None:
        """Raise AnnotuneError when the project settings cannot work for this task."""
        if self.needs_labels and not settings.labels:
            raise AnnotuneError(f"a {self.title} project needs at least one label",
                                hint="pass --labels A,B,... when creating the project")
