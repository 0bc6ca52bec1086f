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
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast, overload

import numpy as np

from annotune.core.errors import AnnotuneError
from annotune.core.near_duplicates import near_duplicate_groups

if TYPE_CHECKING:  # tasks receive one; core itself never builds a tokenizer here
    from tokenizers import Tokenizer

# Fewer documents than this cannot give a validation split of about 10 % in whole documents
# with a sensible label mix: tasks then group by finer units (paragraphs, sentences).
DOCUMENTS_TO_GROUP = 10

# What a task trains one feature on: a label index (single-label), a multi-hot float vector
# (multi-label), one tag id per token (NER), a (start, end) token pair (QA).
Target = int | np.ndarray | list[int] | tuple[int, int]
Annotation = dict[str, Any]
Prediction = dict[str, Any]
ExampleFields = Mapping[str, str]


OptionValue = bool | int | float | str | tuple[float, ...]
T = TypeVar("T")

# Names the shared TaskSettings fields use: an option may not take them (nor the names of
# TaskSettings' own "options" and "declared", which its constructor takes as keywords).
SHARED_SETTINGS = ("labels", "max_length", "stride")
_REQUIRED = object()  # TaskSettings.option without a value for options the task lacks
_BOOL_WORDS = {"yes": True, "true": True, "on": True, "1": True,
               "no": False, "false": False, "off": False, "0": False}


def _shown(value: object) -> str:
    """Write a value as a person types it: yes/no, 0.5, a,b."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple | list):
        return ",".join(_shown(item) for item in value) or "none"
    return str(value)


@dataclass(frozen=True)
class TaskOption:
    """Declare one setting that belongs to one task (a task lists them in ``Task.options``).

    ``type`` is bool, int, float, str or tuple (numbers separated by commas, e.g. one per
    label). ``help`` is one line; the default is appended as "(default: ...)" where it does not
    say it already. ``advanced`` options are given on the command line only, not asked for in
    the desktop's new-project form.
    """

    name: str
    type: type
    default: OptionValue
    help: str
    title: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    advanced: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name in (*SHARED_SETTINGS, "options", "declared"):
            raise ValueError(f"a task option cannot be called {self.name!r}")
        if self.type not in (bool, int, float, str, tuple):
            raise ValueError(f"task option {self.name}: type must be bool, int, float, str or "
                             f"tuple, not {self.type!r}")

    @property
    def flag(self) -> str:
        """Return the command-line flag: ``--max-answer-length`` for ``max_answer_length``."""
        return "--" + self.name.replace("_", "-")

    @property
    def shown_title(self) -> str:
        """Return what a form calls the option (its title, else its name in words)."""
        return self.title or self.name.replace("_", " ").capitalize()

    @property
    def shown_default(self) -> str:
        """Return the default as a person types it (yes/no, 0.5, a,b, none)."""
        return _shown(self.default)

    @property
    def help_text(self) -> str:
        """Return the one-line help with what is allowed and the default: "(default: 20)"."""
        allowed = "" if self.type is bool else f"; {self.allowed()}"
        if "(default:" in self.help:
            return f"{self.help}{allowed}"
        return f"{self.help}{allowed} (default: {self.shown_default})"

    def allowed(self) -> str:
        """Say in words which values the option takes."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is bool:
            return "yes or no"
        what = {int: "a whole number", float: "a number", str: "a text",
                tuple: "numbers separated by commas"}[self.type]
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"{what} from {_shown(low)} to {_shown(high)}"
        if low is not None:
            return f"{what} of at least {_shown(low)}"
        if high is not None:
            return f"{what} of at most {_shown(high)}"
        return what

    def _refuse(self, value: object) -> AnnotuneError:
        # the message names the option itself: it reads the same for a flag and a stored key
        return AnnotuneError(f"the task option {self.name} cannot be {_shown(value)!r}",
                             hint=f"give {self.allowed()}")

    def validate(self, value: object) -> OptionValue:
        """Return ``value`` in the option's own type, or raise AnnotuneError saying what fits."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise self._refuse(value)
            return value
        if self.type is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise self._refuse(value)
            return value
        items = value if self.type is tuple else (value,)
        if not isinstance(items, tuple | list):
            raise self._refuse(value)
        numbers: list[float] = []
        for item in items:
            # bool is an int to Python, never a count or a threshold to a person
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise self._refuse(value)
            if self.type is int and not isinstance(item, int):
                raise self._refuse(value)
            if (self.minimum is not None and item < self.minimum) or (
                    self.maximum is not None and item > self.maximum):
                raise self._refuse(value)
            numbers.append(item)
        if self.type is tuple:
            return tuple(float(item) for item in numbers)
        return numbers[0] if self.type is int else float(numbers[0])

    def parse(self, text: str) -> OptionValue:
        """Read the option from text a person typed (command line, form) and validate it."""
        text = text.strip()
        try:
            if self.type is bool:
                value: object = _BOOL_WORDS[text.lower()]
            elif self.type is int:
                value = int(text)
            elif self.type is float:
                value = float(text)
            elif self.type is tuple:
                value = tuple(float(part) for part in text.split(",") if part.strip())
            else:
                value = text
        except (KeyError, ValueError):
            raise self._refuse(text) from None
        return self.validate(value)


@dataclass(frozen=True, init=False)
class TaskSettings:
    """Project-level task settings; stored in the project and copied into every bundle.

    ``labels``, ``max_length`` and ``stride`` concern every task. What one task alone needs
    (multi-label, QA's answer length) it declares as TaskOption in ``Task.options``; the
    values set live in ``options`` and are read with ``option()``, which falls back to the
    declared default. ``declared`` are the options of the task these settings belong to
    (``Task.default_settings`` and ``Task.settings_from_dict`` fill it in).
    """

    labels: tuple[str, ...] = ()
    max_length: int = 128  # tokens per window, special tokens included
    stride: int = 128  # tokens shared by consecutive windows of a long text (QA doc_stride)
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    declared: tuple[TaskOption, ...] = field(default=(), compare=False, repr=False)

    def __init__(self, labels: Sequence[str] = (), max_length: int = 128, stride: int = 128,
                 options: Mapping[str, object] | None = None,
                 declared: Sequence[TaskOption] = (), **more_options: object) -> None:
        """Hold the shared fields; options come as a mapping or as keywords (``n_best=5``)."""
        object.__setattr__(self, "labels", tuple(labels))
        object.__setattr__(self, "max_length", max_length)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "options", _frozen_values({**(options or {}), **more_options}))
        object.__setattr__(self, "declared", tuple(declared))

    def __hash__(self) -> int:
        # settings hashed as before options existed (cache keys): the values are immutable
        return hash((self.labels, self.max_length, self.stride,
                     tuple(sorted(self.options.items()))))

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None,
                  declared: Sequence[TaskOption] | None = None) -> TaskSettings:
        """Build settings from stored JSON, of this shape or the one before task options.

        Settings written before tasks declared their options keep them at the top level
        (``"multi_label": true``): they are read as options, so old projects and bundles
        decide as before. With ``declared`` given (a task's options, perhaps none), options the
        task does not declare (other tasks' keys in old files, keys from newer versions) are
        dropped.
        """
        data = dict(data or {})
        stored = data.pop("options", None) or {}
        if not isinstance(stored, Mapping):
            raise ValueError(f"the task options are not a JSON object: {stored!r}")
        options = {key: value for key, value in data.items() if key not in SHARED_SETTINGS}
        options.update(stored)
        shared: dict[str, Any] = {key: data[key] for key in SHARED_SETTINGS if key in data}
        settings = cls(**shared, options=options)
        return settings if declared is None else settings.bound_to(declared)

    def to_dict(self) -> dict[str, object]:
        """Return the settings as JSON: the shared fields, and the options under "options".

        The options are written at the top level too, where versions before task options
        read them: a project or bundle made now still opens there with its multi-label mode
        and thresholds (those versions ignore the "options" key).
        """
        options = {key: list(value) if isinstance(value, tuple) else value
                   for key, value in self.options.items()}
        return {**options, "labels": list(self.labels), "max_length": self.max_length,
                "stride": self.stride, "options": dict(options)}

    def with_(self, **changes: object) -> TaskSettings:
        """Return a copy with shared fields and options changed (options by their names)."""
        # Any: replace() checks each field's own type, which one mapping cannot express
        own: dict[str, Any] = {key: changes.pop(key) for key in list(changes)
                               if key in {*SHARED_SETTINGS, "options", "declared"}}
        if changes:
            own["options"] = {**own.get("options", self.options), **changes}
        return replace(self, **own)

    def bound_to(self, declared: Sequence[TaskOption]) -> TaskSettings:
        """Return these settings as a task's, keeping only the options it declares."""
        names = {option.name for option in declared}
        return replace(self, options={key: value for key, value in self.options.items()
                                      if key in names}, declared=tuple(declared))

    @overload
    def option(self, option: str | TaskOption) -> OptionValue: ...

    @overload
    def option(self, option: str | TaskOption, missing: T) -> OptionValue | T: ...

    def option(self, option: str | TaskOption, missing: object = _REQUIRED) -> object:
        """Return an option's value, or its declared default when none was set.

        Tasks pass their TaskOption (which carries the default, so any settings work); other
        code passes the name, looked up in the options these settings were bound to. Code
        that serves several tasks (an editor for every "label" task) passes ``missing``:
        what an option the task does not declare reads as; without it, that is an error.
        """
        if isinstance(option, str):
            found = next((item for item in self.declared if item.name == option), None)
            if found is None:
                if option in self.options:
                    return self.options[option]
                if missing is not _REQUIRED:
                    return missing
                raise AnnotuneError(f"the task declares no option {option!r}",
                                    hint="its options: " + (", ".join(
                                        item.name for item in self.declared) or "none"))
            option = found
        return self.options.get(option.name, option.default)


def _frozen_values(options: Mapping[str, object]) -> dict[str, OptionValue]:
    """Return options with JSON lists turned into tuples (settings stay immutable)."""
    return {key: cast(OptionValue, tuple(value) if isinstance(value, list) else value)
            for key, value in options.items()}


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
    target: Target | None = None
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
    reasons: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class ExampleOrigin:
    """Where a stored example came from: what ``Task.group_keys`` may group by.

    ``meta`` is what the importer kept (CoNLL: the ``-DOCSTART-`` lines before a sentence;
    SQuAD: the article's title and index).
    """

    source: str | None = None
    line: int | None = None
    source_id: str | None = None
    meta: Mapping[str, object] = field(default_factory=dict)


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
    # columns (CSV/TSV) or keys (JSONL) that hold an annotation, tried in this order; the keys
    # ``annotation_to_record`` writes must be among them, so a data export reads back whole
    annotation_columns: ClassVar[tuple[str, ...]] = ("label", "labels")
    # settings of this task alone, stored in TaskSettings.options; the CLI's `init` and the
    # desktop's new-project form offer them
    options: ClassVar[tuple[TaskOption, ...]] = ()
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

    def annotation_to_record(self, annotation: Annotation) -> dict[str, object]:
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
    def model_kwargs(self, settings: TaskSettings) -> dict[str, object]:
        """Keyword arguments for ``AutoModelFor*.from_pretrained`` (num_labels, id2label...)."""
        return {}

    def encode(self, tokenizer: Tokenizer, examples: Sequence[ExampleFields],
               annotations: Sequence[Annotation] | None, settings: TaskSettings) -> list[Feature]:
        """Tokenize examples into features (windows); with annotations, attach training targets.

        ``tokenizer`` is a ``tokenizers.Tokenizer`` with padding and truncation switched off
        (core.features.prepare_tokenizer); the task does its own windowing.
        """
        raise NotImplementedError

    def collate_targets(self, targets: Sequence[Target], seq_len: int) -> dict[str, np.ndarray]:
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
        return TaskSettings(declared=self.options)

    def settings_from_dict(self, data: Mapping[str, object] | None,
                           where: str | None = None) -> TaskSettings:
        """Read this task's settings from stored JSON (a project, run.json, a bundle), checked.

        Every stored option is checked against its declaration here, where files come in: a
        hand-edited ``"multi_label": "false"`` would otherwise read as yes and decide silently.
        ``where`` names the file in the refusal.
        """
        settings = TaskSettings.from_dict(data, self.options)
        for option in self.options:
            if option.name in settings.options:
                try:
                    option.validate(settings.options[option.name])
                except AnnotuneError as error:
                    error.where = error.where or where
                    raise
        return settings

    def declared_option(self, name: str) -> TaskOption:
        """Return the option this task declares under ``name``, or raise AnnotuneError."""
        for option in self.options:
            if option.name == name:
                return option
        raise AnnotuneError(f"the {self.title} task has no option {name}",
                            hint="its options: " + (", ".join(
                                option.name for option in self.options) or "none"))

    def with_labels(self, settings: TaskSettings, added: Sequence[str]) -> TaskSettings:
        """Return settings with labels appended after the project's own (see Project.add_labels).

        Tasks whose options hold one value per label extend them here.
        """
        return settings.with_(labels=(*settings.labels, *added))

    def training_advice(self, n_labeled: int) -> str | None:
        """Say what to expect from training on ``n_labeled`` examples, or None when fine.

        Shown before a training starts (CLI and train panel): a task whose models need far
        more data than a few hundred examples says so before anyone waits for a weak model.
        """
        return None

    def check_settings(self, settings: TaskSettings) -> None:
        """Raise AnnotuneError when the project settings cannot work for this task.

        Every declared option's value is checked against its type and limits; an option the
        task does not declare is refused (settings read from a file are bound to the task
        first, which drops the other tasks' keys that old files carry).
        """
        names = {option.name for option in self.options}
        for name in settings.options:
            if name not in names:
                raise AnnotuneError(
                    f"the {self.title} task does not support {name.replace('_', '-')}",
                    where=f"option {name}",
                    hint="its options: " + (", ".join(sorted(names)) or "none"))
        for option in self.options:
            if option.name in settings.options:
                option.validate(settings.options[option.name])
        if self.needs_labels and not settings.labels:
            raise AnnotuneError(f"a {self.title} project needs at least one label",
                                hint="pass --labels A,B,... when creating the project")
