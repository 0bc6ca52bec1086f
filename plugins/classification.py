"""Share what text and sentence-pair classification have in common: labels, decoding, metrics.

Numpy and tokenizers only, like every plugin module. The metric functions take label indices
(not names) so they can be tested on hand-computed arrays; ``ClassificationTask.metrics`` maps
names to indices and calls them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from tokenizers import Tokenizer

from annotune.core.errors import AnnotuneError
from annotune.core.features import sigmoid, softmax
from annotune.core.tasks import (
    Annotation,
    ExampleFields,
    Feature,
    Prediction,
    Target,
    Task,
    TaskOption,
    TaskSettings,
)
from annotune.plugins.windows import window_starts

MULTI_LABEL = TaskOption(
    "multi_label", bool, False, "several labels per example (sigmoid outputs)",
    title="Several labels per example")
# Fitted on validation after each epoch when none are given (tune_settings), so normally set
# by training; given by hand they are kept.
THRESHOLDS = TaskOption(
    "thresholds", tuple, (), "multi-label: one decision threshold per label, in label order; "
    "none: fitted on the validation examples", title="Decision thresholds", minimum=0.0,
    maximum=1.0, advanced=True)

# Candidate thresholds for tune_thresholds: coarse enough not to overfit a small validation set.
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))


# -- metrics -------------------------------------------------------------------------------------

def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Divide elementwise, giving 0 where the denominator is 0 (sklearn's zero_division=0)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _per_label(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, labels: Sequence[str]
               ) -> tuple[dict[str, dict[str, float]], np.ndarray, np.ndarray]:
    """Return per-label precision/recall/F1/support, the F1 vector and the 'seen' mask."""
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    support = tp + fn
    table = {
        label: {"precision": float(precision[i]), "recall": float(recall[i]),
                "f1": float(f1[i]), "support": int(support[i])}
        for i, label in enumerate(labels)
    }
    # A label that is neither gold nor predicted anywhere in the evaluation set says nothing
    # about the model; counting it as F1 = 0 would punish small validation sets (sklearn's
    # default also averages over the labels present only).
    seen = (tp + fp + fn) > 0
    return table, f1, seen


def single_label_metrics(gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str]
                         ) -> dict[str, Any]:
    """Score single-label predictions given as label indices.

    Returns accuracy, macro-F1 (averaged over labels that occur in gold or predictions),
    per-label precision/recall/F1/support and the confusion matrix (rows gold, columns
    predicted, both in ``labels`` order).
    """
    k = len(labels)
    gold_arr = np.asarray(gold, dtype=np.int64).reshape(-1)
    pred_arr = np.asarray(predicted, dtype=np.int64).reshape(-1)
    if gold_arr.shape != pred_arr.shape:
        raise ValueError(f"{len(gold_arr)} gold labels but {len(pred_arr)} predictions")
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (gold_arr, pred_arr), 1)
    tp = np.diag(confusion)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    table, f1, seen = _per_label(tp, fp, fn, labels)
    n = len(gold_arr)
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "per_label": table,
        "confusion_matrix": {"labels": list(labels), "matrix": confusion.tolist()},
    }


def multi_label_metrics(gold: np.ndarray, predicted: np.ndarray, labels: Sequence[str]
                        ) -> dict[str, Any]:
    """Score multi-label predictions given as (examples, labels) 0/1 matrices.

    Returns micro-F1, macro-F1 (over labels that occur in gold or predictions), subset
    accuracy (the predicted set equals the gold set) and per-label precision/recall/F1/support.
    """
    k = len(labels)
    gold_arr = np.asarray(gold, dtype=bool).reshape(-1, k)
    pred_arr = np.asarray(predicted, dtype=bool).reshape(-1, k)
    if gold_arr.shape != pred_arr.shape:
        raise ValueError(f"gold shape {gold_arr.shape} differs from predictions {pred_arr.shape}")
    tp = (gold_arr & pred_arr).sum(axis=0)
    fp = (~gold_arr & pred_arr).sum(axis=0)
    fn = (gold_arr & ~pred_arr).sum(axis=0)
    table, f1, seen = _per_label(tp, fp, fn, labels)
    n = len(gold_arr)
    micro = _ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum())
    return {
        "micro_f1": float(micro),
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "subset_accuracy": float((gold_arr == pred_arr).all(axis=1).mean()) if n else 0.0,
        "per_label": table,
    }


def tune_thresholds(probabilities: np.ndarray, gold: np.ndarray,
                    grid: Sequence[float] = THRESHOLD_GRID) -> tuple[float, ...]:
    """Pick, per label, the threshold from ``grid`` that maximizes that label's F1.

    ``probabilities`` and ``gold`` are (examples, labels) arrays, e.g. from the validation set.
    Ties go to the threshold nearest 0.5; a label with no gold positive keeps 0.5, since any
    threshold above its highest probability would look perfect there and fail on new text.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    gold_arr = np.asarray(gold, dtype=bool).reshape(probs.shape)
    grid_arr = np.asarray(grid, dtype=np.float64)
    preference = np.argsort(np.abs(grid_arr - 0.5), kind="stable")  # nearest 0.5 first
    chosen = []
    for j in range(probs.shape[1]):
        positives = gold_arr[:, j]
        if not positives.any():
            chosen.append(0.5)
            continue
        predicted = probs[:, j][None, :] >= grid_arr[preference][:, None]
        tp = (predicted & positives).sum(axis=1)
        fp = (predicted & ~positives).sum(axis=1)
        fn = (~predicted & positives).sum(axis=1)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        chosen.append(float(grid_arr[preference][int(np.argmax(f1))]))
    return tuple(chosen)


# -- tokenization --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    """Where a tokenizer puts its special tokens around one text or a pair, and token types."""

    prefix: list[int]
    prefix_types: list[int]
    middle: list[int]  # between the two texts of a pair ([SEP], or </s></s> for RoBERTa)
    middle_types: list[int]
    suffix: list[int]
    suffix_types: list[int]
    text_types: tuple[int, int]  # token type of the first and of the second text

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def probe(cls, tokenizer: Tokenizer, pair: bool) -> _Layout:
        """Learn the layout from one encoded text (pair), so any model family's template works."""
        encoding = tokenizer.encode("a", "b") if pair else tokenizer.encode("a")
        ids, types, seq = encoding.ids, encoding.type_ids, encoding.sequence_ids
        first = [i for i, s in enumerate(seq) if s == 0]
        second = [i for i, s in enumerate(seq) if s == 1] or [len(seq)]
        end_first = first[-1] + 1 if pair else len(seq)
        end_second = second[-1] + 1 if pair else len(seq)
        suffix_start = end_second if pair else first[-1] + 1
        return cls(prefix=ids[:first[0]], prefix_types=types[:first[0]],
                   middle=ids[end_first:second[0]] if pair else [],
                   middle_types=types[end_first:second[0]] if pair else [],
                   suffix=ids[suffix_start:], suffix_types=types[suffix_start:],
                   text_types=(types[first[0]], types[second[0]] if pair else 0))

    def assemble(self, first: list[int], second: list[int] | None) -> tuple[list[int], list[int]]:
        """Return input ids and token types of one window: specials around the text(s)."""
        ids = self.prefix + first
        types = self.prefix_types + [self.text_types[0]] * len(first)
        if second is not None:
            ids = ids + self.middle + second
            types = types + self.middle_types + [self.text_types[1]] * len(second)
        return ids + self.suffix, types + self.suffix_types


@dataclass
class Window:
    """One model input cut from one example: its ids, token types and whether text was cut."""

    example: int
    ids: list[int]
    type_ids: list[int]
    truncated: bool = False


def encode_windows(tokenizer: Tokenizer, texts: Sequence[str], pairs: Sequence[str] | None,
                   max_length: int, stride: int) -> list[Window]:
    """Tokenize texts (or pairs) into windows of at most max_length tokens, in example order.

    Most texts fit: they are encoded in one parallel batch, one window each. A longer text is
    read in overlapping windows (``stride`` tokens shared, plugins/windows.py), each with the
    model's special tokens, so no part of it goes unread. In a pair the longer text is
    windowed and the shorter one repeated in every window, whole when it fits in half a
    window, else cut to half a window (``truncated``: the only text a prediction never sees).
    """
    inputs: list[Any] = list(texts) if pairs is None else list(zip(texts, pairs, strict=True))
    encodings = tokenizer.encode_batch(inputs, add_special_tokens=True)
    windows: list[list[Window]] = [[Window(i, e.ids, e.type_ids)] for i, e in
                                   enumerate(encodings)]
    too_long = [i for i, e in enumerate(encodings) if len(e.ids) > max_length]
    if not too_long:
        return [w for example in windows for w in example]
    layout = _Layout.probe(tokenizer, pairs is not None)
    budget = max_length - layout.n_special
    if budget < (1 if pairs is None else 2):
        raise AnnotuneError(f"max_length {max_length} leaves no room for text",
                            hint="raise max_length (128 is usual)")
    firsts = tokenizer.encode_batch([texts[i] for i in too_long], add_special_tokens=False)
    seconds = (tokenizer.encode_batch([pairs[i] for i in too_long], add_special_tokens=False)
               if pairs is not None else [None] * len(too_long))
    for i, first, second in zip(too_long, firsts, seconds, strict=True):
        windows[i] = _windows(i, first.ids, None if second is None else second.ids, budget,
                              stride, layout)
    return [w for example in windows for w in example]


def _windows(example: int, first: list[int], second: list[int] | None, budget: int,
             stride: int, layout: _Layout) -> list[Window]:
    """Cut one too-long example into windows (see encode_windows)."""
    if second is None:
        return [Window(example, *layout.assemble(first[start:start + budget], None))
                for start in window_starts(len(first), budget, stride)]
    windowed, kept = (first, second) if len(first) >= len(second) else (second, first)
    keep = min(len(kept), budget // 2)
    shorter = kept[:keep]
    room = budget - keep
    out = []
    for start in window_starts(len(windowed), room, stride):
        piece = windowed[start:start + room]
        pair = (piece, shorter) if windowed is first else (shorter, piece)
        out.append(Window(example, *layout.assemble(*pair), truncated=keep < len(kept)))
    return out


# -- the shared task -----------------------------------------------------------------------------

def _as_index(text: str) -> int | None:
    """Read "1" (and "1.0", as spreadsheets and pandas write integers) as an int, else None."""
    whole, dot, fraction = text.partition(".")
    if not whole.lstrip("+-").isdigit() or (dot and fraction.strip("0")):
        return None
    return int(whole)


class ClassificationTask(Task):
    """Label-per-example tasks: one label (softmax) or a set of labels (sigmoid, multi_label).

    Subclasses set the class attributes; ``encode`` reads the first one or two ``fields``.
    """

    annotation_kind: ClassVar[str] = "label"
    auto_model: ClassVar[str] = "AutoModelForSequenceClassification"
    output_names: ClassVar[tuple[str, ...]] = ("logits",)
    # "f1" is macro-F1 for single-label and micro-F1 for multi-label projects (both are also
    # reported under their own names). Macro-F1 rather than accuracy picks the best epoch
    # because labelled sets are often imbalanced: an epoch that predicts the majority class
    # everywhere can top accuracy while being useless on the rare labels users care about.
    # Multi-label uses micro-F1: with many rare labels, per-label F1 on a small validation set
    # jumps between 0 and 1, and its average would pick epochs by noise.
    main_metric: ClassVar[str] = "f1"
    options: ClassVar[tuple[TaskOption, ...]] = (MULTI_LABEL, THRESHOLDS)

    # -- settings ----------------------------------------------------------------------------
    def multi_label(self, settings: TaskSettings) -> bool:
        """Say whether the project gives each example a set of labels (sigmoid outputs)."""
        # validated here: settings read from a file hold what it says, and "false" is truthy
        return MULTI_LABEL in self.options and bool(
            MULTI_LABEL.validate(settings.option(MULTI_LABEL)))

    def thresholds(self, settings: TaskSettings) -> tuple[float, ...]:
        """Return the per-label decision thresholds (empty: untuned, 0.5 each)."""
        if THRESHOLDS not in self.options:
            return ()
        thresholds = THRESHOLDS.validate(settings.option(THRESHOLDS))
        if not isinstance(thresholds, tuple):  # validate returns a tuple option as a tuple
            raise AnnotuneError("the task option thresholds is not a list of numbers",
                                hint=f"give {THRESHOLDS.allowed()}")
        return thresholds

    def with_labels(self, settings: TaskSettings, added: Sequence[str]) -> TaskSettings:
        """Append labels; tuned thresholds get the untuned 0.5 for each new label."""
        changed = super().with_labels(settings, added)
        thresholds = self.thresholds(settings)
        if thresholds:
            changed = changed.with_(thresholds=(*thresholds, *(0.5,) * len(added)))
        return changed

    def check_settings(self, settings: TaskSettings) -> None:
        """Raise AnnotuneError when labels or thresholds cannot work for this task."""
        super().check_settings(settings)
        labels = list(settings.labels)
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise AnnotuneError(f"duplicate labels: {', '.join(duplicates)}",
                                hint="give each label once")
        if any(not str(label).strip() for label in labels):
            raise AnnotuneError("a label is empty", hint="give every label a name")
        if not self.multi_label(settings) and len(labels) < 2:
            raise AnnotuneError(f"a single-label {self.title} project needs at least two labels",
                                hint="add another label, or make the project multi-label")
        thresholds = self.thresholds(settings)
        if thresholds:
            if not self.multi_label(settings):
                raise AnnotuneError("thresholds apply to multi-label projects only",
                                    hint="remove the thresholds or make the project multi-label")
            if len(thresholds) != len(labels):
                raise AnnotuneError(f"{len(thresholds)} thresholds for {len(labels)} labels",
                                    hint="give one threshold per label, in label order")
            if any(not 0.0 < t < 1.0 for t in thresholds):
                raise AnnotuneError("thresholds must lie strictly between 0 and 1",
                                    hint=f"got {list(thresholds)}")

    # -- annotations -------------------------------------------------------------------------
    def _unknown(self, value: Any, settings: TaskSettings, numeric_ok: bool = False
                 ) -> AnnotuneError:
        allowed = ", ".join(settings.labels)
        hint = f"allowed labels: {allowed}"
        if numeric_ok:
            hint += f" (or their index 0-{len(settings.labels) - 1})"
        if self.multi_label(settings):
            hint += '; separate several labels with "|" or write a JSON list'
        return AnnotuneError(f"unknown label {value!r}", hint=hint)

    def _canonical(self, names: Sequence[str], settings: TaskSettings) -> list[str]:
        """Deduplicate label names and put them in the project's label order."""
        wanted = set(names)
        return [label for label in settings.labels if label in wanted]

    def validate(self, annotation: Annotation, example: ExampleFields, settings: TaskSettings
                 ) -> Annotation:
        """Return ``{"label": x}`` (single) or ``{"labels": [...]}`` in label order (multi)."""
        if not isinstance(annotation, Mapping):
            raise AnnotuneError(f"an annotation must be an object, got {annotation!r}",
                                hint='write {"label": "..."}')
        if self.multi_label(settings):
            if "labels" in annotation:
                names = annotation["labels"]
                if not isinstance(names, list | tuple):
                    raise AnnotuneError(f"'labels' must be a list, got {names!r}",
                                        hint='write {"labels": ["a", "b"]}')
            elif "label" in annotation:  # one label is a valid label set
                names = [annotation["label"]]
            else:
                raise AnnotuneError(f"annotation {dict(annotation)!r} has no 'labels'",
                                    hint='write {"labels": ["a", "b"]} (an empty list is allowed)')
            for name in names:
                if name not in settings.labels:
                    raise self._unknown(name, settings)
            return {"labels": self._canonical(names, settings)}
        if "label" not in annotation:
            raise AnnotuneError(f"annotation {dict(annotation)!r} has no 'label'",
                                hint='write {"label": "..."}')
        name = annotation["label"]
        if name not in settings.labels:
            raise self._unknown(name, settings)
        return {"label": name}

    def _label_from_cell(self, value: Any, settings: TaskSettings) -> str:
        """Map one cell value to a label name (exact, index, or unique case-insensitive match)."""
        labels = settings.labels
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self._unknown(value, settings)
        text = str(value).strip()
        if text in labels:
            return text
        # GLUE-style files store classes as 0/1/2: read an integer as an index into the
        # project's labels, unless the labels are numbers themselves (then "3" must mean
        # the label "3", and an unknown number is an error rather than a silent guess).
        numeric_labels = any(_as_index(label) is not None for label in labels)
        index = _as_index(text)
        if index is not None and not numeric_labels:
            if 0 <= index < len(labels):
                return labels[index]
            raise AnnotuneError(f"label index {index} is out of range",
                                hint=f"{len(labels)} labels: "
                                     + ", ".join(f"{i}={name}" for i, name in enumerate(labels)))
        folded = [label for label in labels if label.casefold() == text.casefold()]
        if len(folded) == 1:
            return folded[0]
        raise self._unknown(value, settings, numeric_ok=not numeric_labels)

    def annotation_from_value(self, value: Any, settings: TaskSettings) -> Annotation:
        """Turn a label cell into an annotation.

        Single-label: a label name, or an integer index into ``settings.labels`` (GLUE files
        write 0/1; with labels ("negative", "positive") a cell "1" means "positive") unless the
        labels are numeric themselves. Names match exactly, else case-insensitively when that is
        unambiguous. Multi-label: names (or indices) separated by "|", or a JSON list such as
        ``["a", "b"]``; an empty cell or ``[]`` is the empty label set.
        """
        if not self.multi_label(settings):
            if isinstance(value, list | tuple):
                if len(value) != 1:
                    raise AnnotuneError(f"{len(value)} labels {list(value)!r} in a single-label "
                                        "project", hint="give exactly one label per example")
                value = value[0]
            if isinstance(value, str) and not value.strip():
                raise AnnotuneError("the label is empty",
                                    hint=f"allowed labels: {', '.join(settings.labels)}")
            return {"label": self._label_from_cell(value, settings)}
        items: list[Any]
        if isinstance(value, list | tuple):
            items = list(value)
        elif isinstance(value, str) and value.strip().startswith("["):
            try:
                items = json.loads(value)
            except json.JSONDecodeError as error:
                raise AnnotuneError(f"cannot read the label list {value!r}: {error.msg}",
                                    hint='write a JSON list like ["a", "b"] or a|b') from None
            if not isinstance(items, list):
                raise AnnotuneError(f"the label list {value!r} is not a list",
                                    hint='write a JSON list like ["a", "b"] or a|b')
        elif isinstance(value, str):
            items = [part for part in value.split("|") if part.strip()]
        else:
            items = [value]
        names = [self._label_from_cell(item, settings) for item in items]
        return {"labels": self._canonical(names, settings)}

    def annotation_to_record(self, annotation: Annotation) -> dict[str, object]:
        """Return ``{"label": x}`` or ``{"labels": [...]}`` (CSV writers join lists with "|")."""
        if "labels" in annotation:
            return {"labels": list(annotation["labels"])}
        return {"label": annotation["label"]}

    def stratify_key(self, annotation: Annotation) -> str:
        """Return the label (multi-label: the first label, or "" for the empty set)."""
        if "labels" in annotation:
            return annotation["labels"][0] if annotation["labels"] else ""
        return str(annotation.get("label", ""))

    def _gold_indices(self, annotation: Annotation, settings: TaskSettings) -> list[int]:
        """Return the label indices of an annotation in either form."""
        names = annotation["labels"] if "labels" in annotation else [annotation["label"]]
        index = {label: i for i, label in enumerate(settings.labels)}
        try:
            return [index[name] for name in names]
        except KeyError as error:
            raise self._unknown(error.args[0], settings) from None

    # -- model -------------------------------------------------------------------------------
    def model_kwargs(self, settings: TaskSettings) -> dict[str, object]:
        """Return num_labels, id2label, label2id (and problem_type for multi-label)."""
        kwargs: dict[str, object] = {
            "num_labels": len(settings.labels),
            "id2label": dict(enumerate(settings.labels)),
            "label2id": {label: i for i, label in enumerate(settings.labels)},
        }
        if self.multi_label(settings):
            kwargs["problem_type"] = "multi_label_classification"
        return kwargs

    def target(self, annotation: Annotation | None, settings: TaskSettings) -> Target | None:
        """Return the training target: a label index, or a float32 multi-hot vector."""
        if annotation is None:
            return None
        indices = self._gold_indices(annotation, settings)
        if self.multi_label(settings):
            vector = np.zeros(len(settings.labels), dtype=np.float32)
            vector[indices] = 1.0
            return vector
        if len(indices) != 1:
            raise AnnotuneError(f"annotation {dict(annotation)!r} has {len(indices)} labels "
                                "in a single-label project", hint="give exactly one label")
        return indices[0]

    def encode(self, tokenizer: Tokenizer, examples: Sequence[ExampleFields],
               annotations: Sequence[Annotation] | None, settings: TaskSettings) -> list[Feature]:
        """Make one Feature per window of each example, with the example's target if given.

        A text longer than settings.max_length becomes several overlapping windows (see
        encode_windows); each trains on the example's label, and decode averages their
        logits, so a review's verdict in its last paragraph is read, not cut off.
        Classification features carry no offsets or sequence ids: nothing maps their tokens
        back to characters, and on large imports those lists would cost much memory.
        """
        if annotations is not None and len(annotations) != len(examples):
            raise ValueError(f"{len(examples)} examples but {len(annotations)} annotations")
        texts = [self._field(example, self.fields[0], n) for n, example in enumerate(examples)]
        pairs = None
        if len(self.fields) > 1:
            pairs = [self._field(example, self.fields[1], n) for n, example in enumerate(examples)]
        windows = encode_windows(tokenizer, texts, pairs, settings.max_length, settings.stride)
        targets: dict[int, Any] = {}
        features = []
        for window in windows:
            target = None
            if annotations is not None:
                if window.example not in targets:
                    targets[window.example] = self.target(annotations[window.example], settings)
                target = targets[window.example]
            features.append(Feature(example_index=window.example, input_ids=window.ids,
                                    token_type_ids=window.type_ids, target=target,
                                    truncated=window.truncated))
        return features

    def _field(self, example: ExampleFields, name: str, n: int) -> str:
        value = example.get(name)
        if not isinstance(value, str):
            raise AnnotuneError(f"example {n} has no text in field '{name}'",
                                hint=f"the {self.title} task reads {', '.join(self.fields)}")
        return value

    def collate_targets(self, targets: Sequence[Target], seq_len: int) -> dict[str, np.ndarray]:
        """Return ``{"labels": int64 (batch,)}`` or float32 (batch, labels) for multi-label."""
        if any(t is None for t in targets):
            raise ValueError("a feature without a target was batched for training")
        if targets and isinstance(targets[0], np.ndarray):
            return {"labels": np.stack(targets).astype(np.float32)}
        return {"labels": np.asarray(targets, dtype=np.int64)}

    # -- predictions -------------------------------------------------------------------------
    def decode(self, examples: Sequence[ExampleFields], features: Sequence[Feature],
               outputs: Sequence[Mapping[str, np.ndarray]], settings: TaskSettings
               ) -> list[Prediction]:
        """Turn logits into ``{"label", "score", "probabilities"}`` (+ ``"labels"`` multi-label).

        The logits of a long text's windows are averaged: on long reviews the mean of logits
        scored best of the ways to combine windows (docs/benchmarks.md, long_texts.py), and
        the result stays one logit vector, so thresholds and scores work as for short texts.
        """
        k = len(settings.labels)
        sums = np.zeros((len(examples), k), dtype=np.float64)
        counts = np.zeros(len(examples), dtype=np.int64)
        for feature, output in zip(features, outputs, strict=True):
            sums[feature.example_index] += np.asarray(output["logits"], dtype=np.float64
                                                      ).reshape(k)
            counts[feature.example_index] += 1
        if (counts == 0).any():
            missing = int(np.flatnonzero(counts == 0)[0])
            raise ValueError(f"example {missing} has no feature to decode")
        logits = sums / counts[:, None]
        if self.multi_label(settings):
            probs = sigmoid(logits)
            tuned = self.thresholds(settings)
            # a label added after tuning has no threshold yet: it decides at the untuned 0.5
            thresholds = np.array([tuned[i] if i < len(tuned) else 0.5 for i in range(k)])
            chosen = probs >= thresholds
        else:
            probs = softmax(logits, axis=-1)
        predictions = []
        for row, p in enumerate(probs):
            best = int(np.argmax(p))
            prediction: Prediction = {
                "label": settings.labels[best],
                "score": float(p[best]),
                "probabilities": {label: float(p[i]) for i, label in enumerate(settings.labels)},
            }
            if self.multi_label(settings):
                prediction["labels"] = [settings.labels[i] for i in np.flatnonzero(chosen[row])]
            predictions.append(prediction)
        return predictions

    def prediction_score(self, prediction: Prediction) -> float:
        """Return how sure the whole decision is, in [0, 1] (uncertainty order: lowest first).

        Single-label: how clearly the chosen label beats the runner-up, ``(1 + p1 − p2) / 2``
        (margin order). With two labels that is the chosen label's probability; with more, a
        close call between two labels comes before an even spread over all of them: in
        simulated labeling sessions on five topics margin order reached random order's
        accuracy at 2,000 labels with 765 labels, the chosen label's probability with 1,072
        (docs/label-efficiency.md). Multi-label: its least sure label.
        """
        if "labels" not in prediction:
            probabilities = prediction.get("probabilities")
            if isinstance(probabilities, Mapping) and len(probabilities) >= 2:
                first, second = sorted((float(p) for p in probabilities.values()),
                                       reverse=True)[:2]
                return (1.0 + first - second) / 2.0
            return float(prediction.get("score", 0.0))
        chosen = set(prediction["labels"])
        sure = [p if label in chosen else 1.0 - p
                for label, p in prediction["probabilities"].items()]
        return float(min(sure)) if sure else 0.0

    def metrics(self, predictions: Sequence[Prediction], annotations: Sequence[Annotation],
                settings: TaskSettings) -> dict[str, Any]:
        """Score predictions against gold annotations (examples without one are left out).

        Scalars sit at the top level ("f1", "accuracy"/"subset_accuracy", "macro_f1",
        "micro_f1"); "per_label" and "confusion_matrix" (single-label) are nested.
        """
        pairs = [(p, a) for p, a in zip(predictions, annotations, strict=True) if a is not None]
        if self.multi_label(settings):
            k = len(settings.labels)
            gold = np.zeros((len(pairs), k), dtype=bool)
            pred = np.zeros((len(pairs), k), dtype=bool)
            for row, (p, a) in enumerate(pairs):
                gold[row, self._gold_indices(a, settings)] = True
                pred[row, self._gold_indices({"labels": p["labels"]}, settings)] = True
            result = multi_label_metrics(gold, pred, settings.labels)
            return {"f1": result["micro_f1"], **result}
        # one name -> index table for all examples: validation is scored every epoch, and
        # its uncertainty on hundreds of resamples (core/training/selection.py)
        index = {label: i for i, label in enumerate(settings.labels)}
        try:
            gold_idx = [index[a["labels"][0] if "labels" in a else a["label"]] for _, a in pairs]
            pred_idx = [index[p["label"]] for p, _ in pairs]
        except (KeyError, IndexError):  # an unknown label or none: say which, as before
            gold_idx = [self._gold_indices(a, settings)[0] for _, a in pairs]
            pred_idx = [self._gold_indices({"label": p["label"]}, settings)[0] for p, _ in pairs]
        result = single_label_metrics(gold_idx, pred_idx, settings.labels)
        return {"f1": result["macro_f1"], **result}

    def tune_settings(self, predictions: Sequence[Prediction], annotations: Sequence[Annotation],
                      settings: TaskSettings) -> TaskSettings:
        """Pick per-label thresholds of a multi-label project that has none set."""
        if not self.multi_label(settings) or self.thresholds(settings):
            return settings
        return settings.with_(
            thresholds=tuple(self.tune_thresholds(predictions, annotations, settings)))

    def tune_thresholds(self, predictions: Sequence[Prediction],
                        annotations: Sequence[Annotation], settings: TaskSettings
                        ) -> tuple[float, ...]:
        """Pick per-label thresholds from validation predictions (multi-label projects).

        Store the result with ``settings.with_(thresholds=...)``; decode then uses it.
        """
        if not self.multi_label(settings):
            raise AnnotuneError("thresholds apply to multi-label projects only")
        pairs = [(p, a) for p, a in zip(predictions, annotations, strict=True) if a is not None]
        k = len(settings.labels)
        probs = np.array([[p["probabilities"][label] for label in settings.labels]
                          for p, _ in pairs], dtype=np.float64).reshape(-1, k)
        gold = np.zeros((len(pairs), k), dtype=bool)
        for row, (_, a) in enumerate(pairs):
            gold[row, self._gold_indices(a, settings)] = True
        return tune_thresholds(probs, gold)
