"""Answer decoding from start/end logits and the SQuAD metrics, on hand-built windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from annotune.core.tasks import Feature
from annotune.plugins.qa_postprocess import (
    decode_answers,
    exact_match,
    normalize_answer,
    squad_scores,
    token_f1,
)

CONTEXT = "Paris is the capital of France and its largest city"
WORDS = [(0, 5), (6, 8), (9, 12), (13, 20), (21, 23), (24, 30), (31, 34), (35, 38), (39, 46),
         (47, 51)]  # Paris is the capital of France and its largest city


def window(example_index: int, context_offsets: list[tuple[int, int]], question_len: int = 2
           ) -> Feature:
    """Build a [CLS] question [SEP] context [SEP] window over the given context tokens."""
    sequence_ids = [None] + [0] * question_len + [None] + [1] * len(context_offsets) + [None]
    offsets = ([(0, 0)] + [(0, 3)] * question_len + [(0, 0)] + list(context_offsets)
               + [(0, 0)])
    n = len(sequence_ids)
    return Feature(example_index=example_index, input_ids=list(range(n)),
                   token_type_ids=[0] * n, offsets=offsets, sequence_ids=sequence_ids)


def logits(feature: Feature, start: dict[int, float], end: dict[int, float]
           ) -> dict[str, np.ndarray]:
    """Start/end logits that are zero except at the given token positions."""
    s = np.zeros(len(feature), dtype=np.float32)
    e = np.zeros(len(feature), dtype=np.float32)
    for i, v in start.items():
        s[i] = v
    for i, v in end.items():
        e[i] = v
    return {"start_logits": s, "end_logits": e}


FIRST_CTX = 4  # [CLS] q q [SEP] -> the first context token sits at position 4


def test_decode_picks_best_context_span_and_cuts_text_by_offsets():
    feature = window(0, WORDS)
    out = logits(feature, {FIRST_CTX + 5: 8.0}, {FIRST_CTX + 5: 7.0})
    [prediction] = decode_answers([CONTEXT], [feature], [out])
    assert prediction["text"] == "France"
    assert (prediction["start"], prediction["end"]) == (24, 30)
    assert 0.0 < prediction["score"] <= 1.0


def test_decode_ignores_question_and_special_tokens():
    feature = window(0, WORDS)
    # the question token and [SEP] have the largest logits but can never be an answer
    out = logits(feature, {1: 50.0, 3: 40.0, FIRST_CTX: 2.0}, {2: 50.0, FIRST_CTX: 2.0})
    [prediction] = decode_answers([CONTEXT], [feature], [out])
    assert prediction["text"] == "Paris"


def test_decode_requires_end_after_start_and_respects_max_answer_length():
    feature = window(0, WORDS)
    # best end lies before best start: the pair is invalid
    out = logits(feature, {FIRST_CTX + 5: 9.0, FIRST_CTX + 3: 1.0},
                 {FIRST_CTX + 1: 9.0, FIRST_CTX + 9: 5.0, FIRST_CTX + 5: 4.0})
    [prediction] = decode_answers([CONTEXT], [feature], [out], max_answer_length=30)
    assert prediction["text"] == "France and its largest city"
    # the same logits with at most 2 tokens per answer: only "France" itself fits
    [short] = decode_answers([CONTEXT], [feature], [out], max_answer_length=2)
    assert short["text"] == "France"


def test_decode_takes_the_best_span_across_windows():
    first = window(0, WORDS[:6])
    second = window(0, WORDS[4:])  # overlaps the first window by two tokens
    outputs = [logits(first, {FIRST_CTX + 1: 3.0}, {FIRST_CTX + 1: 3.0}),
               logits(second, {FIRST_CTX + 4: 6.0}, {FIRST_CTX + 5: 6.0})]
    [prediction] = decode_answers([CONTEXT], [first, second], outputs)
    assert prediction["text"] == "largest city"
    assert (prediction["start"], prediction["end"]) == (39, 51)


def test_decode_keeps_examples_apart():
    features = [window(0, WORDS), window(1, WORDS)]
    outputs = [logits(features[0], {FIRST_CTX: 5.0}, {FIRST_CTX: 5.0}),
               logits(features[1], {FIRST_CTX + 9: 5.0}, {FIRST_CTX + 9: 5.0})]
    predictions = decode_answers([CONTEXT, CONTEXT.upper()], features, outputs)
    assert [p["text"] for p in predictions] == ["Paris", "CITY"]


def test_score_is_the_softmax_over_the_candidates():
    # two one-token candidates only (max_answer_length 1): scores 2 and 0
    feature = window(0, WORDS[:2])
    out = logits(feature, {FIRST_CTX: 1.5, FIRST_CTX + 1: -0.5},
                 {FIRST_CTX: 0.5, FIRST_CTX + 1: 0.5})
    [prediction] = decode_answers([CONTEXT], [feature], [out], max_answer_length=1)
    assert prediction["text"] == "Paris"
    assert prediction["score"] == pytest.approx(1.0 / (1.0 + math.exp(-2.0)), rel=1e-6)


def test_the_same_span_seen_by_two_windows_counts_once():
    first = window(0, WORDS[:2])
    second = window(0, WORDS[:2])
    outputs = [logits(f, {FIRST_CTX: 1.5, FIRST_CTX + 1: -0.5},
                      {FIRST_CTX: 0.5, FIRST_CTX + 1: 0.5}) for f in (first, second)]
    [prediction] = decode_answers([CONTEXT], [first, second], outputs, max_answer_length=1)
    assert prediction["score"] == pytest.approx(1.0 / (1.0 + math.exp(-2.0)), rel=1e-6)


def test_null_answer_wins_only_when_unanswerable_questions_are_allowed():
    feature = window(0, WORDS)
    out = logits(feature, {0: 6.0, FIRST_CTX: 2.0}, {0: 6.0, FIRST_CTX: 2.0})
    [no_answer] = decode_answers([CONTEXT], [feature], [out], allow_unanswerable=True)
    assert no_answer["text"] == "" and no_answer["start"] == -1 and no_answer["end"] == -1
    assert 0.5 < no_answer["score"] <= 1.0
    [forced] = decode_answers([CONTEXT], [feature], [out], allow_unanswerable=False)
    assert forced["text"] == "Paris"


def test_null_score_is_the_lowest_over_windows():
    # the window without the answer is sure there is none; the other finds it (as in utils_qa)
    first = window(0, WORDS[:5])
    second = window(0, WORDS[5:])
    outputs = [logits(first, {0: 9.0}, {0: 9.0}),
               logits(second, {0: 1.0, FIRST_CTX + 3: 4.0}, {0: 1.0, FIRST_CTX + 4: 4.0})]
    [prediction] = decode_answers([CONTEXT], [first, second], outputs, allow_unanswerable=True)
    assert prediction["text"] == "largest city"


def test_an_example_without_context_tokens_gets_no_answer():
    feature = window(0, [])
    out = logits(feature, {0: 1.0}, {0: 1.0})
    [prediction] = decode_answers([""], [feature], [out])
    assert prediction == {"text": "", "start": -1, "end": -1, "score": 0.0}


def test_normalize_answer_follows_the_official_script():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theater") == "theater"  # articles only as whole words
    assert normalize_answer("  ") == ""


def test_token_f1_and_exact_match_by_hand():
    # pred {cat, sat}, gold {cat, sat, on, mat}: precision 1, recall 1/2, F1 2/3
    assert token_f1("the cat sat", "cat sat on mat") == pytest.approx(2 / 3)
    # repeated tokens count with multiplicity: overlap red x1 + blue x1 = 2 of 3
    assert token_f1("red red blue", "red blue blue") == pytest.approx(2 / 3)
    assert token_f1("dog", "cat") == 0.0
    assert exact_match("The Eiffel Tower.", "eiffel tower") == 1.0
    assert exact_match("Eiffel", "eiffel tower") == 0.0


def test_squad_scores_take_the_max_over_references_in_percent():
    result = squad_scores(["Denver Broncos", "the cat"],
                          [["Denver Broncos", "Broncos"], ["a dog", "cat sat"]])
    # q1: EM 1, F1 1; q2: EM 0, F1 max(0, 2/3)
    assert result["exact_match"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert result["total"] == 2


def test_squad_v2_scores_split_answerable_and_unanswerable():
    result = squad_scores(["", "", "x", "guess"], [[], ["answer"], ["x"], [""]],
                          with_no_answer_split=True)
    # no-answer gold scores 1 only for the empty prediction; "" against "answer" scores 0
    assert result["exact_match"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(50.0)
    assert result["HasAns_total"] == 2 and result["NoAns_total"] == 2
    assert result["HasAns_exact_match"] == pytest.approx(50.0)
    assert result["NoAns_exact_match"] == pytest.approx(50.0)
    assert result["NoAns_f1"] == pytest.approx(50.0)


def test_squad_scores_of_nothing_are_zero():
    assert squad_scores([], []) == {"exact_match": 0.0, "f1": 0.0, "total": 0}


def test_answers_are_widened_to_whole_characters():
    # tokens of an accent-stripping normaliser stop before the combining mark, an [UNK] may
    # stop inside a ZWJ family; the same span from two windows still counts once
    context = "Ask Jose\u0301 about 👨\u200d👩\u200d👧 or كتابٌ"
    jose, family, book = (context.index(w) for w in ("Jose", "👨", "كتاب"))
    offsets = [(0, 3), (jose, jose + 4), (jose + 6, jose + 11), (family, family + 1),
               (family + 6, family + 8), (book, book + 4)]
    cases = [(1, 1, "Jose\u0301"), (3, 3, "👨\u200d👩\u200d👧"), (5, 5, "كتابٌ")]
    for start, end, expected in cases:
        features = [window(0, offsets), window(0, offsets[1:])]
        outputs = [logits(features[0], {FIRST_CTX + start: 9.0}, {FIRST_CTX + end: 9.0}),
                   logits(features[1], {FIRST_CTX + start - 1: 9.0}, {FIRST_CTX + end - 1: 9.0})]
        [prediction] = decode_answers([context], features, outputs)
        assert prediction["text"] == expected
        assert context[prediction["start"]:prediction["end"]] == expected
