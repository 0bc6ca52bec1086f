"""How far a given annotation is from what out-of-fold models predict: one score per example.

Numpy only, like every plugin module. core/label_check.py trains models on the other folds,
runs them on each example and ranks the examples by these scores (higher: the given
annotation is more likely wrong).

- Classification: self-confidence, as cleanlab ranks label issues: ``1 - p(given label)``;
  multi-label: the worst label (``1 - p`` of a given label, ``p`` of a missing one).
- NER (``span_issues``): every gold span scores ``1 - p(its B-/I- tags)`` over its words, and
  every predicted span that overlaps no gold span scores its own probability; disagreements
  are named: ``type`` (same span, other type), ``boundary``, ``unpredicted`` (a gold span the
  models do not predict), ``missing`` (a predicted span the gold lacks).
- QA (``answer_issue``): ``(1 - token F1 of the out-of-fold answer against the given one)
  * (1 - the model's probability of the given span)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from annotune.core.tasks import (
    Annotation,
    ExampleFields,
    Feature,
    LabelIssue,
    Prediction,
    TaskSettings,
)

# A reason at least this sure changes the suggested annotation; weaker ones are only shown.
SUGGEST_AT = 0.5


class _Decodes(Protocol):
    """A task that turns model outputs into predictions (Task.decode)."""

    def decode(self, examples: Sequence[ExampleFields], features: Sequence[Feature],
               outputs: Sequence[Mapping[str, np.ndarray]], settings: TaskSettings
               ) -> list[Prediction]: ...


class ProbabilityLabelCheck:
    """Give ``label_issues`` to tasks whose decode returns ``probabilities`` (classification)."""

    def label_issues(self: _Decodes, examples: Sequence[ExampleFields],
                     annotations: Sequence[Annotation], features: Sequence[Feature],
                     outputs: Sequence[Mapping[str, np.ndarray]],
                     settings: TaskSettings) -> list[LabelIssue]:
        """Score each given label by the out-of-fold probability the model gives it."""
        predictions = self.decode(examples, features, outputs, settings)
        return [label_issue(annotation, prediction)
                for annotation, prediction in zip(annotations, predictions, strict=True)]


def label_issue(annotation: Annotation, prediction: Prediction) -> LabelIssue:
    """Score one classification annotation against one prediction with ``probabilities``."""
    probabilities: dict[str, float] = prediction["probabilities"]
    if "labels" in annotation:  # multi-label: each label is its own yes/no decision
        given = set(annotation["labels"])
        reasons: list[dict[str, object]] = []
        for label, p in probabilities.items():
            if (label in given) != (p >= 0.5):
                reasons.append({"kind": "drop" if label in given else "add", "label": label,
                                "probability": round(p, 4),
                                "score": round(1 - p if label in given else p, 4)})
        score = max((1 - p if label in given else p for label, p in probabilities.items()),
                    default=0.0)
        suggested = prediction.get("labels")
        suggestion: Annotation | None = (
            {"labels": list(suggested)} if suggested is not None and set(suggested) != given
            else None)
        return LabelIssue(float(score), suggestion, reasons)
    given_label = annotation["label"]
    p_given = float(probabilities.get(given_label, 0.0))
    best = max(probabilities, key=lambda label: probabilities[label])
    reasons = []
    suggestion = None
    if best != given_label:
        # cleanlab's normalized margin: how far the given label trails the best other one
        margin = p_given - probabilities[best]
        reasons.append({"kind": "label", "given": given_label, "suggested": best,
                        "probability": round(p_given, 4),
                        "suggested_probability": round(probabilities[best], 4),
                        "margin": round(margin, 4), "score": round(1 - p_given, 4)})
        suggestion = {"label": best}
    return LabelIssue(1.0 - p_given, suggestion, reasons)


# -- NER ----------------------------------------------------------------------------------------


def _overlaps(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def _span(span: Mapping[str, Any]) -> dict[str, Any]:
    return {"start": int(span["start"]), "end": int(span["end"]), "label": str(span["label"])}


def _gold_probability(span: Mapping[str, Any], words: Sequence[Mapping[str, Any]],
                      tag_index: Mapping[str, int]) -> float | None:
    """Return the mean probability of a gold span's B-/I- tags over its words (None: no word)."""
    covered = [w for w in words if w["start"] < span["end"] and span["start"] < w["end"]]
    if not covered:
        return None
    probs = []
    for position, word in enumerate(covered):
        tag = f"{'B' if position == 0 else 'I'}-{span['label']}"
        index = tag_index.get(tag)
        probs.append(float(word["probs"][index]) if index is not None else 0.0)
    return float(np.mean(probs))


def span_issues(gold: Sequence[Mapping[str, Any]], predicted: Sequence[Mapping[str, Any]],
                words: Sequence[Mapping[str, Any]], tags: Sequence[str]) -> LabelIssue:
    """Compare one example's gold spans with its out-of-fold predicted spans.

    ``words`` are the example's words with their tag probabilities (token_classification.
    word_table); ``tags`` the model's tag names (``O``, ``B-PER``, ``I-PER``, ...).
    """
    tag_index = {tag: i for i, tag in enumerate(tags)}
    scores: list[float] = []
    reasons: list[dict[str, Any]] = []
    suggestion: list[dict[str, Any]] = []
    for span in gold:
        p = _gold_probability(span, words, tag_index)
        if p is None:
            suggestion.append(_span(span))
            continue
        score = 1.0 - p
        scores.append(score)
        overlapping = [s for s in predicted if _overlaps(s, span)]
        same = [s for s in overlapping if (s["start"], s["end"]) == (span["start"], span["end"])]
        base = {"start": int(span["start"]), "end": int(span["end"]), "given": span["label"],
                "score": round(score, 4)}
        if same and same[0]["label"] == span["label"]:
            suggestion.append(_span(span))
            continue
        if same:
            reasons.append({"kind": "type", **base, "suggested": same[0]["label"]})
            replacement = [{**_span(span), "label": same[0]["label"]}]
        elif overlapping:
            reasons.append({"kind": "boundary", **base,
                            "suggested": [_span(s) for s in overlapping]})
            replacement = [_span(s) for s in overlapping]
        else:
            reasons.append({"kind": "unpredicted", **base})
            replacement = []
        suggestion.extend(replacement if score >= SUGGEST_AT else [_span(span)])
    for span in predicted:
        if any(_overlaps(span, g) for g in gold):
            continue
        score = float(span.get("score", 0.0))
        scores.append(score)
        reasons.append({"kind": "missing", "start": int(span["start"]), "end": int(span["end"]),
                        "suggested": span["label"], "score": round(score, 4)})
        if score >= SUGGEST_AT:
            suggestion.append(_span(span))
    suggestion = _without_overlaps(suggestion)
    if sorted(map(_key, suggestion)) == sorted(_key(_span(s)) for s in gold):
        proposed = None
    else:
        proposed = {"spans": suggestion}
    reasons.sort(key=lambda r: -r["score"])
    return LabelIssue(max(scores, default=0.0), proposed, reasons)


def _key(span: Mapping[str, Any]) -> tuple[int, int, str]:
    return int(span["start"]), int(span["end"]), str(span["label"])


def _without_overlaps(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep spans in text order, dropping any that overlaps one kept before it."""
    kept: list[dict[str, Any]] = []
    for span in sorted({_key(s): s for s in spans}.values(), key=_key):
        if not any(_overlaps(span, k) for k in kept):
            kept.append(span)
    return kept


# -- QA -----------------------------------------------------------------------------------------


def answer_issue(annotation: Annotation, prediction: Prediction,
                 token_f1: Any) -> LabelIssue:
    """Score a given answer against an out-of-fold answer with its ``candidates``.

    ``prediction["candidates"]`` lists ``{"start", "end", "probability"}`` (start -1: no
    answer); ``token_f1(predicted, given)`` is SQuAD's token F1.
    """
    answers = annotation.get("answers", [])
    given_spans = {(int(a["start"]), int(a["start"]) + len(a["text"])) for a in answers}
    if not answers:
        given_spans = {(-1, -1)}
    p_given = sum(float(c["probability"]) for c in prediction.get("candidates", [])
                  if (c["start"], c["end"]) in given_spans)
    p_given = min(1.0, p_given)
    text = prediction.get("text", "")
    if answers:
        f1 = max(token_f1(text, a["text"]) for a in answers) if text else 0.0
    else:
        f1 = 1.0 if not text else 0.0
    score = (1.0 - f1) * (1.0 - p_given)
    if f1 >= 1.0:
        return LabelIssue(score)
    suggested = ([{"start": int(prediction["start"]), "text": text}] if text else [])
    reason = {"kind": "answer", "given": [a["text"] for a in answers], "suggested": text,
              "f1": round(f1, 4), "probability": round(p_given, 4), "score": round(score, 4)}
    return LabelIssue(score, {"answers": suggested}, [reason])
