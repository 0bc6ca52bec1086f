"""Text classification task: annotations, encoding, decoding, metrics and registration."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.features import collate
from annotune.core.plugins import build_registry
from annotune.core.tasks import Feature, TaskSettings
from annotune.plugins.text_classification import TextClassificationTask

SINGLE = TaskSettings(labels=("neg", "pos"), max_length=16)
MULTI = TaskSettings(labels=("sports", "politics", "tech"), multi_label=True, max_length=16)


@pytest.fixture
def task():
    return TextClassificationTask()


def test_registry_exposes_the_task():
    registry = build_registry()
    task = registry.task("text-classification")
    assert isinstance(task, TextClassificationTask)
    assert task.title == "Text classification"
    assert task.fields == ("text",)
    assert task.annotation_kind == "label"
    assert task.auto_model == "AutoModelForSequenceClassification"
    assert task.output_names == ("logits",)
    assert task.main_metric == "f1"
    assert "annotune.plugins.text_classification" not in {f.name for f in registry.failures}


# -- annotations -------------------------------------------------------------------------------

def test_validate_single_label_canonical_and_unknown(task):
    assert task.validate({"label": "pos", "extra": 1}, {"text": "x"}, SINGLE) == {"label": "pos"}
    with pytest.raises(AnnotuneError, match="unknown label 'meh'.*neg, pos"):
        task.validate({"label": "meh"}, {"text": "x"}, SINGLE)
    with pytest.raises(AnnotuneError, match="no 'label'"):
        task.validate({"labels": ["pos"]}, {"text": "x"}, SINGLE)
    with pytest.raises(AnnotuneError, match="must be an object"):
        task.validate("pos", {"text": "x"}, SINGLE)


def test_validate_multi_label_orders_dedupes_and_allows_empty(task):
    got = task.validate({"labels": ["tech", "sports", "tech"]}, {"text": "x"}, MULTI)
    assert got == {"labels": ["sports", "tech"]}
    assert task.validate({"labels": []}, {"text": "x"}, MULTI) == {"labels": []}
    assert task.validate({"label": "tech"}, {"text": "x"}, MULTI) == {"labels": ["tech"]}
    with pytest.raises(AnnotuneError, match="unknown label 'art'.*sports, politics, tech"):
        task.validate({"labels": ["art"]}, {"text": "x"}, MULTI)
    with pytest.raises(AnnotuneError, match="must be a list"):
        task.validate({"labels": "tech"}, {"text": "x"}, MULTI)


def test_annotation_from_value_names_indices_and_case(task):
    assert task.annotation_from_value("pos", SINGLE) == {"label": "pos"}
    assert task.annotation_from_value(" neg ", SINGLE) == {"label": "neg"}
    assert task.annotation_from_value("POS", SINGLE) == {"label": "pos"}
    # GLUE files store 0/1: an index into the project's labels
    assert task.annotation_from_value("0", SINGLE) == {"label": "neg"}
    assert task.annotation_from_value("1", SINGLE) == {"label": "pos"}
    assert task.annotation_from_value(1, SINGLE) == {"label": "pos"}
    assert task.annotation_from_value("1.0", SINGLE) == {"label": "pos"}  # pandas-written ints
    assert task.annotation_from_value(0.0, SINGLE) == {"label": "neg"}
    with pytest.raises(AnnotuneError, match="unknown label '0.5'"):
        task.annotation_from_value("0.5", SINGLE)
    with pytest.raises(AnnotuneError, match="unknown label True"):
        task.annotation_from_value(True, SINGLE)
    with pytest.raises(AnnotuneError, match="index 2 is out of range.*0=neg, 1=pos"):
        task.annotation_from_value("2", SINGLE)
    with pytest.raises(AnnotuneError, match="unknown label 'meh'.*index 0-1"):
        task.annotation_from_value("meh", SINGLE)
    with pytest.raises(AnnotuneError, match="empty"):
        task.annotation_from_value("  ", SINGLE)


def test_annotation_from_value_numeric_labels_are_names_not_indices(task):
    stars = TaskSettings(labels=("1", "2", "3", "4", "5"))
    assert task.annotation_from_value("1", stars) == {"label": "1"}
    assert task.annotation_from_value("5", stars) == {"label": "5"}
    with pytest.raises(AnnotuneError, match="unknown label '0'"):
        task.annotation_from_value("0", stars)


def test_annotation_from_value_multi_label_forms(task):
    assert task.annotation_from_value("tech|sports", MULTI) == {"labels": ["sports", "tech"]}
    assert task.annotation_from_value('["politics", "tech"]', MULTI) == {
        "labels": ["politics", "tech"]}
    assert task.annotation_from_value(["tech"], MULTI) == {"labels": ["tech"]}
    assert task.annotation_from_value("", MULTI) == {"labels": []}
    assert task.annotation_from_value("[]", MULTI) == {"labels": []}
    assert task.annotation_from_value("0|2", MULTI) == {"labels": ["sports", "tech"]}
    with pytest.raises(AnnotuneError, match="unknown label 'art'"):
        task.annotation_from_value("tech|art", MULTI)
    with pytest.raises(AnnotuneError, match="unknown label 'tech,sports'.*separate several"):
        task.annotation_from_value("tech,sports", MULTI)
    with pytest.raises(AnnotuneError, match="cannot read the label list"):
        task.annotation_from_value('["tech"', MULTI)


def test_record_and_stratify_key(task):
    assert task.annotation_to_record({"label": "pos"}) == {"label": "pos"}
    assert task.annotation_to_record({"labels": ["a", "b"]}) == {"labels": ["a", "b"]}
    assert task.stratify_key({"label": "pos"}) == "pos"
    assert task.stratify_key({"labels": ["tech", "sports"]}) == "tech"
    assert task.stratify_key({"labels": []}) == ""


def test_check_settings(task):
    task.check_settings(SINGLE)
    task.check_settings(MULTI.with_(thresholds=(0.3, 0.5, 0.7)))
    task.check_settings(TaskSettings(labels=("spam",), multi_label=True))
    with pytest.raises(AnnotuneError, match="at least one label"):
        task.check_settings(TaskSettings())
    with pytest.raises(AnnotuneError, match="at least two labels"):
        task.check_settings(TaskSettings(labels=("spam",)))
    with pytest.raises(AnnotuneError, match="duplicate labels: pos"):
        task.check_settings(TaskSettings(labels=("pos", "neg", "pos")))
    with pytest.raises(AnnotuneError, match="2 thresholds for 3 labels"):
        task.check_settings(MULTI.with_(thresholds=(0.3, 0.5)))
    with pytest.raises(AnnotuneError, match="strictly between 0 and 1"):
        task.check_settings(MULTI.with_(thresholds=(0.3, 0.5, 1.0)))


def test_model_kwargs(task):
    assert task.model_kwargs(SINGLE) == {"num_labels": 2, "id2label": {0: "neg", 1: "pos"},
                                         "label2id": {"neg": 0, "pos": 1}}
    multi = task.model_kwargs(MULTI)
    assert multi["num_labels"] == 3
    assert multi["problem_type"] == "multi_label_classification"


# -- encoding ----------------------------------------------------------------------------------

def test_encode_short_text_matches_tokenizer_and_sets_targets(task, tokenizer):
    examples = [{"text": "a great film"}, {"text": "dull"}]
    features = task.encode(tokenizer, examples, [{"label": "pos"}, {"label": "neg"}], SINGLE)
    assert len(features) == 2
    expected = tokenizer.encode("a great film")
    assert features[0].input_ids == expected.ids
    assert features[0].token_type_ids == [0] * len(expected.ids)
    assert [f.target for f in features] == [1, 0]
    assert [f.example_index for f in features] == [0, 1]
    assert all(f.target is None for f in task.encode(tokenizer, examples, None, SINGLE))


def test_a_long_text_is_read_in_overlapping_windows_none_cut(task, tokenizer):
    long_text = " ".join(f"word{i}" for i in range(200))
    features = task.encode(tokenizer, [{"text": long_text}, {"text": "short"}],
                           [{"label": "pos"}, {"label": "neg"}], SINGLE)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    windows = [f for f in features if f.example_index == 0]
    assert len(windows) > 1 and [f.example_index for f in features][-1] == 1
    content = tokenizer.encode(long_text, add_special_tokens=False).ids
    read = []
    for feature in windows:
        assert len(feature) == SINGLE.max_length  # full windows, the last one too
        assert feature.input_ids[0] == cls_id and feature.input_ids[-1] == sep_id
        assert sep_id not in feature.input_ids[1:-1]
        assert feature.target == 1 and not feature.truncated
        piece = feature.input_ids[1:-1]
        start = next(i for i in range(len(content)) if content[i:i + len(piece)] == piece)
        read.append((start, start + len(piece)))
    # every token of the text is in some window, and consecutive windows overlap
    assert read[0][0] == 0 and read[-1][1] == len(content)
    assert all(a[1] > b[0] for a, b in zip(read, read[1:], strict=False))


def test_windows_of_emoji_cjk_and_rtl_text_keep_the_whole_text(task, tokenizer):
    text = "José 🍕 👨‍👩‍👧 漢字 مرحبا بالعالم שלום עולם\r\n" * 12
    features = task.encode(tokenizer, [{"text": text}], None, SINGLE)
    content = tokenizer.encode(text, add_special_tokens=False).ids
    assert len(features) > 1 and all(len(f) <= SINGLE.max_length for f in features)
    assert features[0].input_ids[1:-1] == content[:SINGLE.max_length - 2]
    assert features[-1].input_ids[1:-1] == content[-(SINGLE.max_length - 2):]


def test_decode_averages_the_windows_of_a_long_text(task, tokenizer):
    long_text = " ".join(f"word{i}" for i in range(60))
    examples = [{"text": long_text}, {"text": "short"}]
    features = task.encode(tokenizer, examples, None, SINGLE)
    n = sum(f.example_index == 0 for f in features)
    assert n > 1  # read in windows, and all of them decide
    logits = [[0.0, 3.0]] + [[1.0, 0.0]] * (n - 1) + [[0.0, 1.0]]
    outputs = [{"logits": np.array(row)} for row in logits]
    first, second = task.decode(examples, features, outputs, SINGLE)
    mean = np.mean(logits[:n], axis=0)
    expected = np.exp(mean) / np.exp(mean).sum()
    assert first["probabilities"]["pos"] == pytest.approx(expected[1])
    assert second["label"] == "pos"


def test_encode_exactly_max_length_is_untouched(task, tokenizer):
    content = tokenizer.encode("one two three four five six seven eight nine ten eleven twelve "
                               "thirteen fourteen", add_special_tokens=False).ids
    assert len(content) == 14  # + [CLS] and [SEP] = 16 = max_length
    (feature,) = task.encode(tokenizer, [{"text": "one two three four five six seven eight "
                                                  "nine ten eleven twelve thirteen fourteen"}],
                             None, SINGLE)
    assert feature.input_ids[1:-1] == content


def test_encode_multi_label_targets_and_collate(task, tokenizer):
    annotations = [{"labels": ["tech", "sports"]}, {"labels": []}]
    features = task.encode(tokenizer, [{"text": "a"}, {"text": "b c"}], annotations, MULTI)
    np.testing.assert_array_equal(features[0].target, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(features[1].target, [0.0, 0.0, 0.0])
    batch = collate(features, 0, task, with_targets=True)
    assert batch["labels"].dtype == np.float32 and batch["labels"].shape == (2, 3)


def test_collate_single_label_targets(task, tokenizer):
    features = task.encode(tokenizer, [{"text": "a"}, {"text": "b c d"}],
                           [{"label": "pos"}, {"label": "neg"}], SINGLE)
    batch = collate(features, 0, task, with_targets=True)
    assert batch["labels"].dtype == np.int64
    np.testing.assert_array_equal(batch["labels"], [1, 0])
    assert batch["input_ids"].shape == (2, max(len(f) for f in features))


def test_encode_rejects_unknown_label_and_missing_text(task, tokenizer):
    with pytest.raises(AnnotuneError, match="unknown label 'meh'"):
        task.encode(tokenizer, [{"text": "a"}], [{"label": "meh"}], SINGLE)
    with pytest.raises(AnnotuneError, match="example 0 has no text in field 'text'"):
        task.encode(tokenizer, [{"body": "a"}], None, SINGLE)


# -- decoding and metrics ----------------------------------------------------------------------

def _features(n):
    return [Feature(example_index=i, input_ids=[101, 102], token_type_ids=[0, 0])
            for i in range(n)]


def test_decode_single_label_softmax(task):
    outputs = [{"logits": np.array([0.0, np.log(3.0)])}, {"logits": np.array([2.0, 0.0])}]
    preds = task.decode([{"text": "a"}, {"text": "b"}], _features(2), outputs, SINGLE)
    assert preds[0]["label"] == "pos"
    assert preds[0]["score"] == pytest.approx(0.75)
    assert preds[0]["probabilities"] == pytest.approx({"neg": 0.25, "pos": 0.75})
    assert preds[1]["label"] == "neg"
    assert preds[1]["score"] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert "labels" not in preds[0]
    assert task.prediction_score(preds[0]) == pytest.approx(0.75)


def test_decode_multi_label_sigmoid_with_thresholds(task):
    settings = MULTI.with_(thresholds=(0.5, 0.8, 0.2))
    # sigmoid: ln 3 -> 0.75, 0 -> 0.5, ln(1/3) -> 0.25
    logits = np.array([np.log(3.0), np.log(3.0), np.log(1 / 3)])
    (pred,) = task.decode([{"text": "a"}], _features(1), [{"logits": logits}], settings)
    assert pred["labels"] == ["sports", "tech"]  # politics 0.75 < 0.8; tech 0.25 >= 0.2
    assert pred["label"] == "sports"
    assert pred["score"] == pytest.approx(0.75)
    assert pred["probabilities"] == pytest.approx({"sports": 0.75, "politics": 0.75,
                                                   "tech": 0.25})
    # least sure decision: tech chosen at 0.25
    assert task.prediction_score(pred) == pytest.approx(0.25)
    (plain,) = task.decode([{"text": "a"}], _features(1), [{"logits": logits}], MULTI)
    assert plain["labels"] == ["sports", "politics"]


def test_options_read_from_a_file_are_checked_where_they_are_used(task):
    # A hand-edited settings file (a bundle's, a project's): "false" must not switch a
    # single-label project to multi-label decisions, nor text pass as thresholds.
    # Reading the file refuses it at once (Task.settings_from_dict); settings built past that
    # check (TaskSettings.from_dict, as a third-party caller might) are refused at use.
    wrong_yes_no = {"labels": ["neg", "pos"], "max_length": 16,
                    "options": {"multi_label": "false"}}
    with pytest.raises(AnnotuneError, match="multi_label cannot be 'false'"):
        task.settings_from_dict(wrong_yes_no)
    stored = TaskSettings.from_dict(wrong_yes_no, task.options)
    logits = np.array([2.0, 0.0])
    with pytest.raises(AnnotuneError, match="multi_label cannot be 'false'"):
        task.decode([{"text": "a"}], _features(1), [{"logits": logits}], stored)
    stored = TaskSettings.from_dict({"labels": ["a", "b"], "options": {
        "multi_label": True, "thresholds": ["high", "low"]}}, task.options)
    with pytest.raises(AnnotuneError, match="thresholds cannot be") as raised:
        task.thresholds(stored)
    assert "numbers separated by commas" in raised.value.hint


def test_decode_averages_several_features_of_one_example(task):
    features = [Feature(0, [101, 102], [0, 0]), Feature(0, [101, 102], [0, 0])]
    outputs = [{"logits": np.array([2.0, 0.0])}, {"logits": np.array([0.0, 2.0 * np.log(3.0)])}]
    (pred,) = task.decode([{"text": "a"}], features, outputs, SINGLE)
    assert pred["probabilities"]["pos"] == pytest.approx(
        1 / (1 + np.exp(-(np.log(3.0) - 1.0))))


def test_decode_gathers_windows_in_any_order_and_breaks_ties_as_argmax(task):
    # a long text's windows need not be adjacent or in example order; an exact tie goes to
    # the first label, as numpy's argmax decides
    settings = TaskSettings(labels=("a", "b", "c"), max_length=16)
    features = [Feature(1, [101], [0]), Feature(0, [101], [0]), Feature(2, [101], [0]),
                Feature(1, [101], [0])]
    outputs = [{"logits": np.array([0.0, 4.0, 0.0])}, {"logits": np.array([1.0, 1.0, 0.0])},
               {"logits": np.array([0.0, 0.0, 0.0])}, {"logits": np.array([0.0, 0.0, 4.0])}]
    examples = [{"text": "x"}, {"text": "y"}, {"text": "z"}]
    preds = task.decode(examples, features, outputs, settings)
    assert [p["label"] for p in preds] == ["a", "b", "a"]
    assert preds[1]["probabilities"]["b"] == pytest.approx(preds[1]["probabilities"]["c"])
    assert preds[2]["score"] == pytest.approx(1 / 3)
    assert all(type(v) is float for p in preds for v in [p["score"], *p["probabilities"].values()])
    with pytest.raises(ValueError, match="example 2 has no feature"):
        task.decode(examples, features[:2], outputs[:2], settings)
    assert task.decode([], [], [], settings) == []


def test_metrics_single_label_hand_computed(task):
    gold = ["pos", "pos", "pos", "neg", "neg"]
    pred = ["pos", "neg", "pos", "neg", "pos"]
    m = task.metrics([{"label": p} for p in pred], [{"label": g} for g in gold], SINGLE)
    # pos: tp 2, fp 1, fn 1 -> P 2/3 R 2/3 F1 2/3; neg: tp 1, fp 1, fn 1 -> 1/2 each
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["f1"] == m["macro_f1"]
    assert m["per_label"]["pos"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["confusion_matrix"] == {"labels": ["neg", "pos"], "matrix": [[1, 1], [1, 2]]}


def test_metrics_multi_label_hand_computed(task):
    gold = [["sports"], ["sports", "tech"], []]
    pred = [["sports"], ["tech"], ["politics"]]
    m = task.metrics([{"labels": p, "label": "x"} for p in pred],
                     [{"labels": g} for g in gold], MULTI)
    # tp 2 (sports, tech), fp 1 (politics), fn 1 (sports in row 2) -> micro F1 4/6
    assert m["micro_f1"] == pytest.approx(4 / 6)
    assert m["f1"] == m["micro_f1"]
    # sports F1 2/3, politics 0, tech 1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert m["subset_accuracy"] == pytest.approx(1 / 3)
    assert m["per_label"]["sports"]["recall"] == pytest.approx(0.5)


def test_tune_thresholds_from_predictions(task):
    probs = [(0.9, 0.3, 0.1), (0.6, 0.35, 0.1), (0.2, 0.1, 0.1), (0.4, 0.05, 0.1)]
    gold = [["sports", "politics"], ["sports", "politics"], [], []]
    preds = [{"probabilities": dict(zip(MULTI.labels, p, strict=True))} for p in probs]
    thresholds = task.tune_thresholds(preds, [{"labels": g} for g in gold], MULTI)
    assert thresholds[0] == pytest.approx(0.5)  # 0.45..0.6 separate; 0.5 is nearest 0.5
    assert thresholds[1] == pytest.approx(0.3)  # only <= 0.3 catches both positives
    assert thresholds[2] == pytest.approx(0.5)  # no positives: left at the default
    task.check_settings(MULTI.with_(thresholds=thresholds))


# -- with a model and real data ----------------------------------------------------------------

@pytest.mark.parametrize("settings", [SINGLE, MULTI], ids=["single", "multi"])
def test_model_kwargs_and_batches_fit_a_transformers_model(task, tokenizer, settings):
    import torch  # the training side only: the task module itself never imports torch
    from transformers import AutoModelForSequenceClassification, BertConfig

    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37,
                        **task.model_kwargs(settings))
    model = AutoModelForSequenceClassification.from_config(config)
    texts = [{"text": "a fine day"}, {"text": "rain again and again"}]
    gold = ([{"label": "pos"}, {"label": "neg"}] if not task.multi_label(settings)
            else [{"labels": ["sports", "tech"]}, {"labels": []}])
    features = task.encode(tokenizer, texts, gold, settings)
    batch = {k: torch.from_numpy(v) for k, v in collate(features, 0, task, True).items()}
    output = model(**batch)
    assert torch.isfinite(output.loss)
    output.loss.backward()  # the loss matches the target dtype and shape
    raw = [{"logits": row} for row in output.logits.detach().numpy()]
    preds = task.decode(texts, features, raw, settings)
    assert task.metrics(preds, gold, settings)["f1"] >= 0.0
    assert model.config.id2label[1] == settings.labels[1]


def test_sst2_dev_encodes_quickly_with_glue_indices(task, tokenizer, datasets_dir):
    path = datasets_dir / "sst2" / "dev.tsv"
    assert path.exists(), f"the SST-2 dataset is missing: expected {path} (see shared/datasets)"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    settings = TaskSettings(labels=("negative", "positive"), max_length=32)
    annotations = [task.annotation_from_value(row["label"], settings) for row in rows]
    started = time.perf_counter()
    features = task.encode(tokenizer, [{"text": r["sentence"]} for r in rows], annotations,
                           settings)
    elapsed = time.perf_counter() - started
    assert sorted({f.example_index for f in features}) == list(range(len(rows)))
    assert max(len(f) for f in features) == 32  # some reviews are longer: read in windows
    assert len(features) > len(rows)
    assert all(f.input_ids[-1] == tokenizer.token_to_id("[SEP]") for f in features)
    first = {f.example_index: f.target for f in features}
    assert sum(first.values()) == sum(row["label"] == "1" for row in rows)
    assert elapsed < 5.0, f"encoding {len(rows)} texts took {elapsed:.1f} s"


def test_max_length_without_room_for_text_is_an_error(task, tokenizer):
    tiny = SINGLE.with_(max_length=2)
    (short,) = task.encode(tokenizer, [{"text": ""}], None, tiny)  # [CLS] [SEP] still fits
    assert len(short) == 2
    with pytest.raises(AnnotuneError, match="max_length 2 leaves no room"):
        task.encode(tokenizer, [{"text": "too long"}], None, tiny)


def test_tasks_fit_their_settings_on_validation_through_one_method():
    """The loop asked hasattr(task, "tune_thresholds"); every task now answers tune_settings."""
    from annotune.core.plugins import registry
    from annotune.core.tasks import TaskSettings

    tasks = registry().tasks
    single = TaskSettings(labels=("a", "b"))
    for task in tasks.values():  # single-label and span tasks keep their settings as they are
        assert task.tune_settings([], [], single) is single
    multi = TaskSettings(labels=("a", "b"), multi_label=True)
    predictions = [{"labels": ["a"], "probabilities": {"a": 0.9, "b": 0.3}},
                   {"labels": [], "probabilities": {"a": 0.2, "b": 0.35}}]
    annotations = [{"labels": ["a"]}, {"labels": ["b"]}]
    tuned = tasks["text-classification"].tune_settings(predictions, annotations, multi)
    thresholds = tuned.option("thresholds")
    assert len(thresholds) == 2 and thresholds[1] <= 0.35  # "b" found at 0.35
    assert tasks["text-classification"].tune_settings(predictions, annotations, tuned) is tuned


TOPICS = TaskSettings(labels=("sports", "politics", "tech"), max_length=16)


def _decoded(task, rows):
    outputs = [{"logits": np.log(np.array(row))} for row in rows]
    return task.decode([{"text": str(i)} for i in range(len(rows))], _features(len(rows)),
                       outputs, TOPICS)


def test_a_close_call_between_two_labels_is_less_sure_than_an_even_spread(task):
    spread, close = _decoded(task, [(0.40, 0.35, 0.25), (0.45, 0.44, 0.11)])
    # the chosen label's probability would put the spread first (0.40 < 0.45); the margin
    # over the runner-up puts the close call first: (1 + 0.01) / 2 < (1 + 0.05) / 2
    assert task.prediction_score(close) == pytest.approx(0.505)
    assert task.prediction_score(spread) == pytest.approx(0.525)
    assert spread["score"] == pytest.approx(0.40)  # what the user is shown stays its probability


def test_with_two_labels_the_order_is_the_chosen_labels_probability(task):
    outputs = [{"logits": np.array([0.0, np.log(3.0)])}, {"logits": np.array([0.3, 0.0])}]
    for prediction in task.decode([{"text": "a"}, {"text": "b"}], _features(2), outputs, SINGLE):
        assert task.prediction_score(prediction) == pytest.approx(prediction["score"])


def test_the_labeling_queue_offers_the_close_call_first(task, tmp_path):
    from annotune.core.formats.base import ImportRecord
    from annotune.core.store import Project

    with Project.create(tmp_path / "topics.annotune", task="text-classification",
                        settings=TOPICS) as project:
        project.add_examples([ImportRecord(fields={"text": text}, line=n + 2) for n, text in
                              enumerate(["Elections ⚽ 🏛️ and chips", "Match report 👨‍👩‍👧"])])
        spread, close = _decoded(task, [(0.40, 0.35, 0.25), (0.45, 0.44, 0.11)])
        project.save_predictions("bundle", [(1, spread, task.prediction_score(spread)),
                                            (2, close, task.prediction_score(close))])
        assert project.next_example(order="uncertainty").id == 2
