"""Numpy classification metrics and threshold tuning, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from annotune.plugins.classification import (
    multi_label_metrics,
    single_label_metrics,
    tune_thresholds,
)

LABELS = ("a", "b", "c")


def test_single_label_three_classes():
    gold = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
    pred = [0, 1, 0, 1, 2, 2, 2, 0, 2, 0]
    m = single_label_metrics(gold, pred, LABELS)
    assert m["confusion_matrix"]["labels"] == ["a", "b", "c"]
    assert m["confusion_matrix"]["matrix"] == [[3, 1, 0], [0, 1, 1], [1, 0, 3]]
    assert m["accuracy"] == pytest.approx(7 / 10)
    # a: tp 3 fp 1 fn 1 -> P 3/4 R 3/4; b: tp 1 fp 1 fn 1 -> 1/2; c: tp 3 fp 1 fn 1 -> 3/4
    assert m["per_label"]["a"] == pytest.approx(
        {"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4})
    assert m["per_label"]["b"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_label"]["c"]["support"] == 4
    assert m["macro_f1"] == pytest.approx((0.75 + 0.5 + 0.75) / 3)


def test_single_label_asymmetric_precision_recall():
    # gold: 2 a, 2 b; the model says "a" everywhere
    m = single_label_metrics([0, 0, 1, 1], [0, 0, 0, 0], ("a", "b"))
    assert m["per_label"]["a"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 2})
    # never predicted: precision counts as 0, not as an error
    assert m["per_label"]["b"] == pytest.approx(
        {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2})
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx(1 / 3)  # accuracy 0.5 hides the useless model


def test_single_label_macro_f1_skips_labels_absent_from_gold_and_predictions():
    m = single_label_metrics([0, 1, 1], [0, 1, 0], LABELS)
    # a: tp 1 fp 1 fn 0 -> F1 2/3; b: tp 1 fp 0 fn 1 -> 2/3; c never seen: left out
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["per_label"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_single_label_empty_and_mismatched():
    m = single_label_metrics([], [], LABELS)
    assert m["accuracy"] == 0.0 and m["macro_f1"] == 0.0
    assert m["confusion_matrix"]["matrix"] == [[0] * 3] * 3
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        single_label_metrics([0, 1], [0], LABELS)


def test_multi_label_hand_computed():
    gold = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1], [0, 0, 0]])
    pred = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 1], [0, 0, 0]])
    m = multi_label_metrics(gold, pred, LABELS)
    # a: tp 2; b: tp 1 fn 1; c: tp 1 fp 1 -> micro tp 4 fp 1 fn 1 -> F1 8/10
    assert m["micro_f1"] == pytest.approx(0.8)
    assert m["per_label"]["a"] == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2})
    assert m["per_label"]["b"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_label"]["c"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["subset_accuracy"] == pytest.approx(2 / 4)  # rows 3 and 4 (empty set) match


def test_multi_label_all_empty_is_zero_not_nan():
    m = multi_label_metrics(np.zeros((2, 3)), np.zeros((2, 3)), LABELS)
    assert m["micro_f1"] == 0.0 and m["macro_f1"] == 0.0
    assert m["subset_accuracy"] == 1.0


def test_metrics_are_plain_json_values():
    import json

    single = single_label_metrics([0, 1], [1, 1], ("a", "b"))
    multi = multi_label_metrics(np.eye(3), np.eye(3), LABELS)
    assert json.loads(json.dumps(single)) == single
    assert json.loads(json.dumps(multi)) == multi


def test_tune_thresholds_per_label():
    probs = np.array([[0.9, 0.2], [0.7, 0.25], [0.3, 0.1], [0.65, 0.05]])
    gold = np.array([[1, 1], [1, 1], [0, 0], [0, 0]])
    # label a: positives 0.9, 0.7, negatives 0.3, 0.65 -> (0.65, 0.7] separates: 0.7
    # label b: positives 0.2, 0.25, negatives 0.1, 0.05 -> (0.1, 0.2]: nearest 0.5 is 0.2
    assert tune_thresholds(probs, gold) == pytest.approx((0.7, 0.2))


def test_tune_thresholds_prefers_default_on_ties_and_without_positives():
    probs = np.array([[0.99, 0.9], [0.01, 0.8]])
    gold = np.array([[1, 0], [0, 0]])
    assert tune_thresholds(probs, gold) == (0.5, 0.5)
