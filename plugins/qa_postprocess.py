"""Turn start/end logits into answers, and score answers the way the official SQuAD scripts do.

Numpy only: evaluation after training and the torch-free Predictor share this module. The
decoding follows transformers' examples/pytorch/question-answering/utils_qa.py
(``postprocess_qa_predictions``): n-best start and end tokens per window, context tokens only,
end >= start, at most ``max_answer_length`` tokens, answer text cut from the original context by
character offsets (widened to whole grapheme clusters), and a null ("no answer") candidate
scored at the CLS token.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from annotune.core.features import softmax
from annotune.core.tasks import Feature, Prediction
from annotune.plugins.graphemes import widen_to_graphemes

CLS_INDEX = 0  # every window starts with the classifier token; "no answer" points at it

NO_ANSWER: Prediction = {"text": "", "start": -1, "end": -1, "score": 0.0}


def _window_candidates(feature: Feature, start_logits: np.ndarray, end_logits: np.ndarray,
                       n_best: int, max_answer_length: int) -> list[tuple[float, int, int]]:
    """Return the n-best valid spans of one window as (score, start char, end char)."""
    is_context = np.array([sid == 1 for sid in feature.sequence_ids], dtype=bool)
    if not is_context.any():
        return []
    k = min(n_best, int(is_context.sum()))
    # a stable sort on the negated logits keeps the earlier token first among equal logits
    starts = np.argsort(-np.where(is_context, start_logits, -np.inf), kind="stable")[:k]
    ends = np.argsort(-np.where(is_context, end_logits, -np.inf), kind="stable")[:k]
    start_chars = np.array([feature.offsets[i][0] for i in starts.tolist()], dtype=np.int64)
    end_chars = np.array([feature.offsets[i][1] for i in ends.tolist()], dtype=np.int64)
    lengths = ends[None, :] - starts[:, None] + 1
    # tokens without characters (normaliser artefacts) cannot bound an answer
    has_chars = end_chars[None, :] > start_chars[:, None]
    valid = (lengths >= 1) & (lengths <= max_answer_length) & has_chars
    scores = np.where(valid, start_logits[starts][:, None] + end_logits[ends][None, :], -np.inf)
    # only the n best of a window can reach the example's n best
    flat = np.argsort(-scores, axis=None, kind="stable")[:min(n_best, int(valid.sum()))]
    rows, cols = np.unravel_index(flat, scores.shape)
    return [(float(scores[r, c]), int(start_chars[r]), int(end_chars[c]))
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True)]


def decode_answers(contexts: Sequence[str], features: Sequence[Feature],
                   outputs: Sequence[Mapping[str, np.ndarray]], *, n_best: int = 20,
                   max_answer_length: int = 30, allow_unanswerable: bool = False,
                   with_candidates: bool = False) -> list[Prediction]:
    """Pick one answer per example from the start/end logits of all of its windows.

    ``outputs[i]`` holds ``start_logits`` and ``end_logits`` of ``features[i]`` (unpadded).
    A prediction is ``{"text", "start", "end", "score"}`` with ``text == context[start:end]``
    (character offsets, end exclusive); no answer is ``""`` with start and end -1.
    The score is the softmax probability of the chosen candidate among the example's n-best
    distinct spans (plus the null answer when unanswerable questions are allowed), so it lies
    in [0, 1] and is low when the model hesitates between spans. The null answer wins when
    its score (the lowest CLS score over the windows, as in utils_qa) beats the best span.
    ``with_candidates`` adds ``"candidates"``: every n-best span (and the null answer, start
    -1) as ``{"start", "end", "probability"}`` (checking a given answer needs its probability).
    """
    by_example: dict[int, list[int]] = {}
    for index, feature in enumerate(features):
        by_example.setdefault(feature.example_index, []).append(index)

    predictions = []
    for example_index, context in enumerate(contexts):
        spans: dict[tuple[int, int], float] = {}
        null_score: float | None = None
        for feature_index in by_example.get(example_index, []):
            feature = features[feature_index]
            start_logits = np.asarray(outputs[feature_index]["start_logits"], dtype=np.float64)
            end_logits = np.asarray(outputs[feature_index]["end_logits"], dtype=np.float64)
            window_null = float(start_logits[CLS_INDEX] + end_logits[CLS_INDEX])
            if null_score is None or window_null < null_score:
                null_score = window_null
            for score, start_char, end_char in _window_candidates(
                    feature, start_logits, end_logits, n_best, max_answer_length):
                # a token may stop before an accent its normaliser stripped, or inside an
                # emoji sequence: answers are whole user-perceived characters
                key = widen_to_graphemes(context, start_char, end_char)
                # overlapping windows see the same span twice: keep its best score only
                if key not in spans or score > spans[key]:
                    spans[key] = score
        predictions.append(_choose(context, spans, null_score, n_best, allow_unanswerable,
                                   with_candidates))
    return predictions


def _choose(context: str, spans: dict[tuple[int, int], float], null_score: float | None,
            n_best: int, allow_unanswerable: bool, with_candidates: bool = False
            ) -> Prediction:
    """Keep the n-best candidates, turn their scores into probabilities, return the winner."""
    ranked = sorted(spans.items(), key=lambda item: (-item[1], item[0]))[:n_best]
    candidates: list[tuple[tuple[int, int] | None, float]] = list(ranked)
    if allow_unanswerable and null_score is not None:
        candidates.append((None, null_score))
    if not candidates:
        return dict(NO_ANSWER)
    probabilities = softmax(np.array([score for _, score in candidates]))
    extra: dict[str, Any] = {}
    if with_candidates:
        extra["candidates"] = [{"start": span[0] if span else -1, "end": span[1] if span else -1,
                                "probability": float(p)}
                               for (span, _), p in zip(candidates, probabilities, strict=True)]
    null_position = len(candidates) - 1
    if allow_unanswerable and null_score is not None and (
            not ranked or null_score > ranked[0][1]):
        return {"text": "", "start": -1, "end": -1,
                "score": float(probabilities[null_position]), **extra}
    # Here ``ranked`` is not empty: without spans, candidates held the null answer (returned
    # above) or nothing (NO_ANSWER above). The best span comes first among the candidates.
    (start_char, end_char), _ = ranked[0]
    return {"text": context[start_char:end_char], "start": start_char, "end": end_char,
            "score": float(probabilities[0]), **extra}


# -- SQuAD metrics (official evaluate-v2.0.py semantics) -----------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, and collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when both answers are equal after normalisation."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 between normalised answers; two empty answers agree (score 1)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], references: Sequence[Sequence[str]],
                 with_no_answer_split: bool = False) -> dict[str, Any]:
    """Score answer texts against reference texts; EM and F1 in percent, max over references.

    A question whose references are all empty (after normalisation) has no answer: only the
    empty prediction scores 1 there. ``with_no_answer_split`` adds the HasAns_*/NoAns_* figures
    of the official SQuAD 2.0 script.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    exact, f1, has_answer = [], [], []
    for prediction, gold_texts in zip(predictions, references, strict=True):
        golds = [g for g in gold_texts if normalize_answer(g)] or [""]
        has_answer.append(golds != [""])
        exact.append(max(exact_match(prediction, g) for g in golds))
        f1.append(max(token_f1(prediction, g) for g in golds))
    result: dict[str, Any] = {**_percentages(exact, f1, ""), "total": len(predictions)}
    if with_no_answer_split:
        for prefix, wanted in (("HasAns_", True), ("NoAns_", False)):
            chosen = [i for i, flag in enumerate(has_answer) if flag == wanted]
            result.update(_percentages([exact[i] for i in chosen], [f1[i] for i in chosen],
                                       prefix))
            result[f"{prefix}total"] = len(chosen)
    return result


def _percentages(exact: list[float], f1: list[float], prefix: str) -> dict[str, float]:
    count = len(exact)
    return {f"{prefix}exact_match": 100.0 * sum(exact) / count if count else 0.0,
            f"{prefix}f1": 100.0 * sum(f1) / count if count else 0.0}
