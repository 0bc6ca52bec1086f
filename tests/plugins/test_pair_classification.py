"""Sentence-pair classification: BERT pair encoding, windows over long pairs, shared labels."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.plugins import build_registry
from annotune.core.tasks import Feature, TaskSettings
from annotune.plugins.pair_classification import PairClassificationTask

NLI = TaskSettings(labels=("entailment", "not_entailment"), max_length=20)


@pytest.fixture
def task():
    return PairClassificationTask()


def _words(prefix: str, n: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


def _segments(tokenizer, feature):
    """Split a [CLS] a [SEP] b [SEP] feature into its two content parts."""
    sep = tokenizer.token_to_id("[SEP]")
    first_sep = feature.input_ids.index(sep)
    return feature.input_ids[1:first_sep], feature.input_ids[first_sep + 1:-1]


def test_registry_exposes_the_task():
    registry = build_registry()
    task = registry.task("pair-classification")
    assert isinstance(task, PairClassificationTask)
    assert task.title == "Sentence-pair classification"
    assert task.fields == ("text", "text_pair")
    assert task.annotation_kind == "label"
    assert task.auto_model == "AutoModelForSequenceClassification"
    assert task.main_metric == "f1"
    assert "annotune.plugins.pair_classification" not in {f.name for f in registry.failures}


def test_multi_label_is_refused(task):
    task.check_settings(NLI)
    with pytest.raises(AnnotuneError, match="does not support multi-label"):
        task.check_settings(NLI.with_(multi_label=True))


def test_encode_short_pair_has_bert_layout_and_type_ids(task, tokenizer):
    examples = [{"text": "a man sleeps", "text_pair": "nobody sleeps"}]
    (feature,) = task.encode(tokenizer, examples, [{"label": "not_entailment"}], NLI)
    expected = tokenizer.encode("a man sleeps", "nobody sleeps")
    assert feature.input_ids == expected.ids
    first, second = _segments(tokenizer, feature)
    assert first == tokenizer.encode("a man sleeps", add_special_tokens=False).ids
    assert second == tokenizer.encode("nobody sleeps", add_special_tokens=False).ids
    n_first = len(first) + 2  # [CLS] a [SEP]
    assert feature.token_type_ids == [0] * n_first + [1] * (len(second) + 1)
    assert feature.input_ids[0] == tokenizer.token_to_id("[CLS]")
    assert feature.target == 1


def _covers(pieces, full):
    """Tell whether the pieces (in order, overlapping) cover ``full`` from start to end."""
    position = 0
    for piece in pieces:
        start = next(i for i in range(len(full)) if full[i:i + len(piece)] == piece)
        if start > position:
            return False
        position = start + len(piece)
    return position == len(full)


def test_a_long_premise_is_windowed_and_the_hypothesis_kept_whole(task, tokenizer):
    premise, hypothesis = _words("p", 40), "it rains"
    features = task.encode(tokenizer, [{"text": premise, "text_pair": hypothesis}], None, NLI)
    assert len(features) > 1
    full_first = tokenizer.encode(premise, add_special_tokens=False).ids
    firsts = []
    for feature in features:
        assert len(feature) == NLI.max_length and not feature.truncated
        first, second = _segments(tokenizer, feature)
        assert second == tokenizer.encode(hypothesis, add_special_tokens=False).ids
        assert feature.token_type_ids.count(1) == len(second) + 1
        assert feature.input_ids[-1] == tokenizer.token_to_id("[SEP]")
        firsts.append(first)
    assert _covers(firsts, full_first)


def test_a_long_hypothesis_is_windowed_when_it_is_the_longer_text(task, tokenizer):
    features = task.encode(tokenizer, [{"text": "it rains", "text_pair": _words("h", 40)}],
                           None, NLI)
    full_second = tokenizer.encode(_words("h", 40), add_special_tokens=False).ids
    seconds = []
    for feature in features:
        first, second = _segments(tokenizer, feature)
        assert first == tokenizer.encode("it rains", add_special_tokens=False).ids
        assert len(first) + len(second) == NLI.max_length - 3
        seconds.append(second)
    assert len(features) > 1 and _covers(seconds, full_second)


def test_two_long_texts_window_the_longer_and_say_the_shorter_was_cut(task, tokenizer):
    features = task.encode(tokenizer, [{"text": _words("p", 30), "text_pair": _words("h", 20)}],
                           None, NLI)
    budget = NLI.max_length - 3
    for feature in features:
        first, second = _segments(tokenizer, feature)
        assert len(feature) == NLI.max_length
        assert len(second) == budget // 2  # the shorter text: half a window, the rest cut
        assert feature.truncated
    assert _covers([_segments(tokenizer, f)[0] for f in features],
                   tokenizer.encode(_words("p", 30), add_special_tokens=False).ids)


def test_encode_requires_both_fields(task, tokenizer):
    with pytest.raises(AnnotuneError, match="example 1 has no text in field 'text_pair'"):
        task.encode(tokenizer, [{"text": "a", "text_pair": "b"}, {"text": "c"}], None, NLI)


def test_decode_and_metrics_share_the_classification_code(task):
    features = [Feature(i, [101, 102], [0, 0]) for i in range(3)]
    outputs = [{"logits": np.array(v)} for v in ([3.0, 0.0], [0.0, 1.0], [1.0, 0.0])]
    examples = [{"text": "a", "text_pair": "b"}] * 3
    preds = task.decode(examples, features, outputs, NLI)
    assert [p["label"] for p in preds] == ["entailment", "not_entailment", "entailment"]
    assert set(preds[0]["probabilities"]) == {"entailment", "not_entailment"}
    gold = [{"label": "entailment"}, {"label": "entailment"}, {"label": "entailment"}]
    metrics = task.metrics(preds, gold, NLI)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    # entailment F1 0.8; not_entailment has no gold but one prediction: F1 0
    assert metrics["f1"] == pytest.approx(0.4)


def test_glue_indices_map_to_label_names(task):
    assert task.annotation_from_value("0", NLI) == {"label": "entailment"}
    assert task.annotation_from_value("1", NLI) == {"label": "not_entailment"}


def test_rte_pairs_encode_within_max_length(task, tokenizer, datasets_dir):
    path = datasets_dir / "rte" / "train.tsv"
    assert path.exists(), f"the RTE dataset is missing: expected {path} (see shared/datasets)"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))[:400]
    examples = [{"text": r["sentence1"], "text_pair": r["sentence2"]} for r in rows]
    annotations = [task.annotation_from_value(r["label"], NLI) for r in rows]
    settings = NLI.with_(max_length=64)
    features = task.encode(tokenizer, examples, annotations, settings)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    assert sorted({f.example_index for f in features}) == list(range(len(rows)))
    assert max(len(f) for f in features) == 64  # some RTE premises are longer: windows
    for feature in features:
        row = rows[feature.example_index]
        assert len(feature) <= 64
        assert feature.input_ids[0] == cls_id and feature.input_ids[-1] == sep_id
        assert feature.input_ids.count(sep_id) == 2
        assert 1 in feature.token_type_ids  # the hypothesis always keeps some tokens
        assert feature.target == int(row["label"])
