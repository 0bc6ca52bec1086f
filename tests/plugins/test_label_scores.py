"""Per-task label scores: how far a given annotation is from what an out-of-fold model says."""

from __future__ import annotations

import numpy as np
import pytest

from annotune.core.tasks import Feature, TaskSettings
from annotune.plugins.label_scores import answer_issue, label_issue
from annotune.plugins.qa_postprocess import decode_answers, token_f1
from annotune.plugins.question_answering import QuestionAnsweringTask
from annotune.plugins.text_classification import TextClassificationTask
from annotune.plugins.token_classification import IGNORE_INDEX, TokenClassificationTask

# -- classification -----------------------------------------------------------------------------


def test_classification_scores_by_self_confidence_and_suggests_the_best_label():
    prediction = {"label": "neg", "score": 0.9, "probabilities": {"pos": 0.1, "neg": 0.9}}
    issue = label_issue({"label": "pos"}, prediction)
    assert issue.score == pytest.approx(0.9)
    assert issue.suggestion == {"label": "neg"}
    assert issue.reasons[0]["margin"] == pytest.approx(-0.8)
    agreeing = label_issue({"label": "neg"}, prediction)
    assert agreeing.score == pytest.approx(0.1) and agreeing.suggestion is None
    assert agreeing.reasons == []


def test_multi_label_scores_the_worst_label():
    prediction = {"label": "a", "score": 0.9, "labels": ["a", "c"],
                  "probabilities": {"a": 0.9, "b": 0.2, "c": 0.8}}
    issue = label_issue({"labels": ["a", "b"]}, prediction)
    assert issue.score == pytest.approx(0.8)  # b given at 0.2, c missing at 0.8
    assert issue.suggestion == {"labels": ["a", "c"]}
    assert {(r["kind"], r["label"]) for r in issue.reasons} == {("drop", "b"), ("add", "c")}


def test_text_classification_task_scores_raw_outputs():
    task = TextClassificationTask()
    settings = TaskSettings(labels=("pos", "neg"))
    examples = [{"text": "🍕 美味しい"}, {"text": "رائع"}]
    features = [Feature(i, [101, 102], [0, 0]) for i in range(2)]
    outputs = [{"logits": np.array([3.0, -3.0])}, {"logits": np.array([3.0, -3.0])}]
    issues = task.label_issues(examples, [{"label": "pos"}, {"label": "neg"}], features,
                               outputs, settings)
    assert issues[0].score < 0.01 and issues[0].suggestion is None
    assert issues[1].score > 0.99 and issues[1].suggestion == {"label": "pos"}


# -- NER ----------------------------------------------------------------------------------------

NER_LABELS = ("PER", "LOC")
TAG_COUNT = 5  # O, B-PER, I-PER, B-LOC, I-LOC
TEXT = "Jose\u0301 flew to 東京 with 🍕 and met محمد in Paris"


def at(piece, label):
    start = TEXT.index(piece)
    return {"start": start, "end": start + len(piece), "label": label}


TRUE = [at("Jose\u0301", "PER"), at("東京", "LOC"), at("Paris", "LOC")]


def believing(task, tokenizer, settings, truth):
    """Features of TEXT and logits of a model sure of ``truth`` (its first-piece tags)."""
    annotation = task.validate({"spans": truth}, {"text": TEXT}, settings)
    features = task.encode(tokenizer, [{"text": TEXT}], [annotation], settings)
    outputs = []
    for feature in features:
        logits = np.zeros((len(feature), TAG_COUNT), dtype=np.float32)
        for position, tag in enumerate(feature.target):
            logits[position, 0 if tag == IGNORE_INDEX else tag] = 8.0
        outputs.append({"logits": logits})
    return features, outputs


@pytest.fixture
def ner():
    return TokenClassificationTask(), TaskSettings(labels=NER_LABELS)


def check(ner, tokenizer, given):
    task, settings = ner
    features, outputs = believing(task, tokenizer, settings, TRUE)
    annotation = task.validate({"spans": given}, {"text": TEXT}, settings)
    [issue] = task.label_issues([{"text": TEXT}], [annotation], features, outputs, settings)
    return issue


def plain(spans):
    return sorted((s["start"], s["end"], s["label"]) for s in spans)


def test_ner_agreeing_spans_score_low(ner, tokenizer):
    issue = check(ner, tokenizer, TRUE)
    assert issue.score < 0.01 and issue.suggestion is None and issue.reasons == []


def test_ner_type_swap_is_found_and_swapped_back(ner, tokenizer):
    issue = check(ner, tokenizer, [TRUE[0], at("東京", "PER"), TRUE[2]])
    assert issue.score > 0.99
    [reason] = issue.reasons
    assert (reason["kind"], reason["given"], reason["suggested"]) == ("type", "PER", "LOC")
    assert TEXT[reason["start"]:reason["end"]] == "東京"
    assert plain(issue.suggestion["spans"]) == plain(TRUE)


def test_ner_dropped_span_is_found_and_added_back(ner, tokenizer):
    issue = check(ner, tokenizer, [TRUE[1], TRUE[2]])  # José is missing from the gold
    assert issue.score > 0.99
    [reason] = issue.reasons
    assert reason["kind"] == "missing" and reason["suggested"] == "PER"
    assert TEXT[reason["start"]:reason["end"]] == "Jose\u0301"  # the accent stays whole
    assert plain(issue.suggestion["spans"]) == plain(TRUE)


def test_ner_added_span_nobody_predicts_is_found_and_removed(ner, tokenizer):
    issue = check(ner, tokenizer, [*TRUE, at("محمد", "PER"), at("🍕", "LOC")])
    kinds = sorted((r["kind"], TEXT[r["start"]:r["end"]]) for r in issue.reasons)
    assert kinds == [("unpredicted", "محمد"), ("unpredicted", "🍕")]
    assert issue.score > 0.99
    assert plain(issue.suggestion["spans"]) == plain(TRUE)


def test_ner_boundary_disagreement_suggests_the_predicted_extent(ner, tokenizer):
    issue = check(ner, tokenizer, [TRUE[0], TRUE[1], at("in Paris", "LOC")])
    [reason] = issue.reasons
    assert reason["kind"] == "boundary"
    assert plain(issue.suggestion["spans"]) == plain(TRUE)


# -- QA -----------------------------------------------------------------------------------------

CONTEXT = "Paris is the capital of France and its largest city"
WORDS = [(0, 5), (6, 8), (9, 12), (13, 20), (21, 23), (24, 30), (31, 34), (35, 38), (39, 46),
         (47, 51)]
FIRST = 4  # [CLS] q q [SEP] -> the first context token


def qa_window(example_index=0):
    sequence_ids = [None, 0, 0, None] + [1] * len(WORDS) + [None]
    offsets = [(0, 0), (0, 3), (0, 3), (0, 0), *WORDS, (0, 0)]
    n = len(sequence_ids)
    return Feature(example_index, list(range(n)), [0] * n, offsets, sequence_ids)


def qa_outputs(feature, answer_word, runner_up=None):
    start = np.zeros(len(feature), dtype=np.float32)
    end = np.zeros(len(feature), dtype=np.float32)
    start[FIRST + answer_word] = end[FIRST + answer_word] = 6.0
    if runner_up is not None:
        start[FIRST + runner_up] = end[FIRST + runner_up] = 5.0
    return {"start_logits": start, "end_logits": end}


def test_decode_can_return_its_candidates_with_probabilities():
    feature = qa_window()
    [prediction] = decode_answers([CONTEXT], [feature], [qa_outputs(feature, 0)],
                                  with_candidates=True)
    assert prediction["text"] == "Paris"
    total = sum(c["probability"] for c in prediction["candidates"])
    assert total == pytest.approx(1.0)
    assert prediction["candidates"][0] == {"start": 0, "end": 5,
                                           "probability": prediction["score"]}
    [plain_prediction] = decode_answers([CONTEXT], [feature], [qa_outputs(feature, 0)])
    assert "candidates" not in plain_prediction  # the Predictor's output is unchanged


def test_qa_wrong_answer_scores_high_and_suggests_the_models_answer():
    task = QuestionAnsweringTask()
    settings = task.default_settings()
    first, second = qa_window(0), qa_window(1)
    example = {"context": CONTEXT, "question": "What is the capital of France?"}
    right = {"answers": [{"start": 0, "text": "Paris"}]}
    wrong = {"answers": [{"start": 24, "text": "France"}]}
    issues = task.label_issues([example, example], [right, wrong], [first, second],
                               [qa_outputs(first, 0), qa_outputs(second, 0)], settings)
    assert issues[0].score == 0.0 and issues[0].suggestion is None
    assert issues[1].score > 0.9
    assert issues[1].suggestion == right
    assert issues[1].reasons[0]["f1"] == 0.0


def test_qa_score_falls_when_the_model_also_believes_the_given_span():
    feature = qa_window()
    wrong = {"answers": [{"start": 24, "text": "France"}]}
    [alone] = decode_answers([CONTEXT], [feature], [qa_outputs(feature, 0)],
                             with_candidates=True)
    [hesitant] = decode_answers([CONTEXT], [feature], [qa_outputs(feature, 0, runner_up=5)],
                                with_candidates=True)
    assert answer_issue(wrong, hesitant, token_f1).score < answer_issue(wrong, alone,
                                                                        token_f1).score


def test_qa_given_no_answer_against_an_answer():
    prediction = {"text": "Paris", "start": 0, "end": 5, "score": 0.9,
                  "candidates": [{"start": 0, "end": 5, "probability": 0.9},
                                 {"start": -1, "end": -1, "probability": 0.1}]}
    issue = answer_issue({"answers": []}, prediction, token_f1)
    assert issue.score == pytest.approx(0.9)
    assert issue.suggestion == {"answers": [{"start": 0, "text": "Paris"}]}
