"""The question-answering task: validation, windows with stride, targets, decoding, metrics."""

from __future__ import annotations

import numpy as np
import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.features import collate, pad_id
from annotune.core.plugins import build_registry
from annotune.core.tasks import TaskSettings
from annotune.plugins.question_answering import QuestionAnsweringTask, window_starts

WORDS = ("river mountain forest valley ocean island desert meadow canyon glacier "
         "harbor village castle bridge tower garden market temple palace museum").split()


@pytest.fixture
def task():
    return QuestionAnsweringTask()


def long_context(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


def context_chars(feature) -> list[tuple[int, int]]:
    return [o for o, s in zip(feature.offsets, feature.sequence_ids, strict=True) if s == 1]


def peaked_outputs(features, positions):
    """Logits that point at the given (start, end) token of each feature."""
    outputs = []
    for feature, (start, end) in zip(features, positions, strict=True):
        s = np.zeros(len(feature), dtype=np.float32)
        e = np.zeros(len(feature), dtype=np.float32)
        s[start] = e[end] = 10.0
        outputs.append({"start_logits": s, "end_logits": e})
    return outputs


def test_task_is_registered_with_its_contract():
    registry = build_registry()
    task = registry.task("question-answering")
    assert task.title == "Extractive question answering"
    assert task.annotation_kind == "answers"
    assert task.fields == ("context", "question")
    assert task.auto_model == "AutoModelForQuestionAnswering"
    assert task.output_names == ("start_logits", "end_logits")
    assert task.sequence_outputs and not task.needs_labels and task.main_metric == "f1"
    assert "squad" in registry.importers and "qa-jsonl" in registry.exporters


def test_default_settings_and_setting_checks(task):
    defaults = task.default_settings()
    assert (defaults.max_length, defaults.stride) == (384, 128)
    task.check_settings(defaults)  # no labels needed
    with pytest.raises(AnnotuneError, match="max_length 16 is too short"):
        task.check_settings(TaskSettings(max_length=16))
    with pytest.raises(AnnotuneError, match="n_best"):
        task.check_settings(TaskSettings(max_length=384, n_best=0))


# -- validation ----------------------------------------------------------------------------------
EXAMPLE = {"context": "The Loire flows through Orléans.", "question": "Which city?"}


def test_validate_returns_canonical_answers(task):
    start = EXAMPLE["context"].index("Orléans")
    annotation = task.validate({"answers": [{"start": start, "text": "Orléans", "extra": 1},
                                            {"answer_start": 4, "text": "Loire"}]},
                               EXAMPLE, TaskSettings())
    assert annotation == {"answers": [{"start": start, "text": "Orléans"},
                                      {"start": 4, "text": "Loire"}]}


def test_validate_accepts_hf_shape_and_end_offsets(task):
    hf = task.validate({"answers": {"text": ["Loire"], "answer_start": [4]}}, EXAMPLE,
                       TaskSettings())
    by_end = task.validate({"answers": [{"start": 4, "end": 9}]}, EXAMPLE, TaskSettings())
    assert hf == by_end == {"answers": [{"start": 4, "text": "Loire"}]}


def test_validate_names_the_mismatch(task):
    with pytest.raises(AnnotuneError) as error:
        task.validate({"answers": [{"start": 5, "text": "Loire"}]}, EXAMPLE, TaskSettings())
    message = str(error.value)
    assert "'Loire'" in message and "'oire '" in message and "answer 1" in message


def test_a_mismatch_that_fits_utf16_offsets_says_so_in_the_hint(task):
    # an answers cell of a CSV written by a JavaScript tool: each emoji counts twice there
    example = {"context": "🍕🍕 The café in Zürich 👨\u200d👩\u200d👧 opens", "question": "Where?"}
    with pytest.raises(AnnotuneError) as error:
        task.validate({"answers": [{"start": 17, "text": "Zürich"}]}, example, TaskSettings())
    assert "UTF-16 code units" in error.value.hint and "it is 15" in error.value.hint


def test_validate_rejects_out_of_range_empty_and_non_integer(task):
    with pytest.raises(AnnotuneError, match="outside the context"):
        task.validate({"answers": [{"start": 30, "text": "Orléans"}]}, EXAMPLE, TaskSettings())
    with pytest.raises(AnnotuneError, match="outside the context"):
        task.validate({"answers": [{"start": -1, "text": "T"}]}, EXAMPLE, TaskSettings())
    with pytest.raises(AnnotuneError, match="empty"):
        task.validate({"answers": [{"start": 3, "text": " "}]}, EXAMPLE, TaskSettings())
    with pytest.raises(AnnotuneError, match="integer"):
        task.validate({"answers": [{"start": "4", "text": "Loire"}]}, EXAMPLE, TaskSettings())
    with pytest.raises(AnnotuneError, match="'answers'"):
        task.validate({"label": "x"}, EXAMPLE, TaskSettings())


def test_empty_answer_list_needs_allow_unanswerable(task):
    with pytest.raises(AnnotuneError, match="allow_unanswerable"):
        task.validate({"answers": []}, EXAMPLE, TaskSettings())
    assert task.validate({"answers": []}, EXAMPLE, TaskSettings(allow_unanswerable=True)) == {
        "answers": []}


def test_options_read_from_a_file_are_checked_where_they_are_used(task, tokenizer):
    # A hand-edited settings file (a bundle's, a project's) holds text where a value belongs:
    # "false" must not read as yes, "20" must not fail deep inside decoding.
    # Reading the file refuses them at once (Task.settings_from_dict); settings built past
    # that check (TaskSettings.from_dict, as a third-party caller might) are refused at use.
    wrong_yes_no = {"max_length": 384, "stride": 128, "options": {"allow_unanswerable": "false"}}
    with pytest.raises(AnnotuneError, match="allow_unanswerable cannot be 'false'"):
        task.settings_from_dict(wrong_yes_no)
    stored = TaskSettings.from_dict(wrong_yes_no, task.options)
    with pytest.raises(AnnotuneError, match="allow_unanswerable cannot be 'false'"):
        task.validate({"answers": []}, EXAMPLE, stored)
    settings = TaskSettings.from_dict({"max_length": 384, "stride": 128,
                                       "options": {"n_best": "20"}}, task.options)
    [feature] = task.encode(tokenizer, [EXAMPLE], None, settings)
    outputs = peaked_outputs([feature], [(0, 0)])
    with pytest.raises(AnnotuneError, match="n_best cannot be '20'") as raised:
        task.decode([EXAMPLE], [feature], outputs, settings)
    assert "whole number" in raised.value.hint


def test_answers_cell_is_read_as_json(task):
    assert task.annotation_from_value('[{"start": 4, "text": "Loire"}]', TaskSettings()) == {
        "answers": [{"start": 4, "text": "Loire"}]}
    with pytest.raises(AnnotuneError, match="not JSON"):
        task.annotation_from_value("Loire", TaskSettings())


# -- encoding ------------------------------------------------------------------------------------
def test_windows_share_stride_tokens_and_lose_no_context_token(task, tokenizer):
    context = long_context(300)
    settings = TaskSettings(max_length=64, stride=16)
    features = task.encode(tokenizer, [{"context": context, "question": "where?"}], None,
                           settings)
    assert len(features) > 3
    assert all(len(f) <= 64 for f in features)
    assert all(f.target is None for f in features)
    full = tokenizer.encode(context, add_special_tokens=False).offsets
    seen = [context_chars(f) for f in features]
    # every context token is in some window, in order, and windows overlap by the stride
    assert sorted(set().union(*map(set, seen))) == sorted(set(full))
    for before, after in zip(seen, seen[1:], strict=False):
        assert len(set(before) & set(after)) == 16
        assert after[0] == before[len(before) - 16]
    assert seen[-1][-1] == full[-1]


def test_answer_in_second_window_is_the_target_there_and_cls_elsewhere(task, tokenizer):
    context = long_context(80)
    # one token per word: word 58 lies beyond the first window (64 - 3 special - 3 question)
    start = len(" ".join(context.split()[:58])) + 1
    assert context[start:].startswith("palace museum")
    annotation = {"answers": [{"start": start, "text": "palace museum"}]}
    example = {"context": context, "question": "which building?"}
    settings = TaskSettings(max_length=64, stride=16)
    features = task.encode(tokenizer, [example], [task.validate(annotation, example, settings)],
                           settings)
    targets = [f.target for f in features]
    assert targets[0] == (0, 0)
    hits = [i for i, t in enumerate(targets) if t != (0, 0)]
    assert hits and hits[0] >= 1
    for i in hits:
        first, last = targets[i]
        assert features[i].sequence_ids[first] == 1 and features[i].sequence_ids[last] == 1
        assert features[i].offsets[first][0] == start
        assert features[i].offsets[last][1] == start + len("palace museum")
    # decoding the targets as logits gives the answer back
    prediction = task.decode([example], features, peaked_outputs(features, targets), settings)
    assert prediction[0]["text"] == "palace museum" and prediction[0]["start"] == start


def test_unicode_context_maps_answers_to_character_offsets(task, tokenizer):
    context = "Le café naïve de Zürich 🙂 est près de 東京駅 et de Ærøskøbing."
    example = {"context": context, "question": "Où ?"}
    settings = TaskSettings(max_length=384, stride=128)
    for answer in ("東京駅", "Zürich", "Ærøskøbing"):
        annotation = task.validate(
            {"answers": [{"start": context.index(answer), "text": answer}]}, example, settings)
        [feature] = task.encode(tokenizer, [example], [annotation], settings)
        first, last = feature.target
        assert (feature.offsets[first][0], feature.offsets[last][1]) == (
            context.index(answer), context.index(answer) + len(answer))
        [prediction] = task.decode([example], [feature],
                                   peaked_outputs([feature], [feature.target]), settings)
        assert prediction["text"] == answer


@pytest.mark.parametrize("answer", ["Jose\u0301", "❤️", "كتابٌ", "नमस्ते"])
def test_predicted_answers_keep_the_marks_the_normaliser_strips(task, tokenizer, answer):
    context = f"Le mot est {answer} et rien d'autre.\r\nFin 👨\u200d👩\u200d👧."
    example = {"context": context, "question": "Quel mot ?"}
    settings = TaskSettings(max_length=384, stride=128)
    start = context.index(answer)
    annotation = task.validate({"answers": [{"start": start, "text": answer}]}, example,
                               settings)
    [feature] = task.encode(tokenizer, [example], [annotation], settings)
    assert feature.offsets[feature.target[1]][1] < start + len(answer)  # the token stops short
    [prediction] = task.decode([example], [feature],
                               peaked_outputs([feature], [feature.target]), settings)
    assert (prediction["text"], prediction["start"]) == (answer, start)


def test_long_questions_are_truncated_and_types_mark_the_segments(task, tokenizer):
    question = long_context(200) + "?"
    example = {"context": long_context(30), "question": question}
    [feature] = task.encode(tokenizer, [example], None, TaskSettings(max_length=384, stride=128))
    assert feature.sequence_ids.count(0) == 64
    assert feature.sequence_ids.count(1) == len(
        tokenizer.encode(example["context"], add_special_tokens=False).ids)
    assert feature.input_ids[0] == tokenizer.token_to_id("[CLS]")
    assert all(t == (1 if s == 1 else 0) for t, s in
               zip(feature.token_type_ids, feature.sequence_ids, strict=True)
               if s is not None)
    # a short window keeps at most half of itself for the question
    small = task.encode(tokenizer, [example], None, TaskSettings(max_length=64, stride=8))
    assert all(f.sequence_ids.count(0) == (64 - 3) // 2 for f in small)
    assert all(len(f) <= 64 for f in small)


def test_unanswerable_annotations_target_cls_everywhere(task, tokenizer):
    example = {"context": long_context(120), "question": "anything?"}
    settings = TaskSettings(max_length=64, stride=16, allow_unanswerable=True)
    features = task.encode(tokenizer, [example], [{"answers": []}], settings)
    assert len(features) > 1 and all(f.target == (0, 0) for f in features)


def test_window_starts_reduce_an_overlap_too_large_for_the_window():
    assert window_starts(10, 20, 5) == [0]
    assert window_starts(50, 20, 5) == [0, 15, 30]
    # stride 128 with 50-token windows would never advance: overlap shrinks to 25
    assert window_starts(100, 50, 128) == [0, 25, 50]


def test_collate_targets_builds_start_and_end_positions(task, tokenizer):
    examples = [{"context": "alpha beta gamma", "question": "which?"},
                {"context": "delta epsilon", "question": "what?"}]
    annotations = [{"answers": [{"start": 6, "text": "beta"}]},
                   {"answers": [{"start": 0, "text": "delta"}]}]
    features = task.encode(tokenizer, examples, annotations, TaskSettings(max_length=384))
    batch = collate(features, pad_id(tokenizer), task, with_targets=True)
    assert batch["start_positions"].dtype == np.int64
    assert batch["start_positions"].tolist() == [f.target[0] for f in features]
    assert batch["end_positions"].tolist() == [f.target[1] for f in features]
    assert tokenizer.id_to_token(features[0].input_ids[features[0].target[0]]) == "beta"


def test_metrics_and_prediction_score(task):
    annotations = [{"answers": [{"start": 0, "text": "Denver Broncos"}]},
                   {"answers": [{"start": 0, "text": "a dog"}, {"start": 9, "text": "cat sat"}]}]
    predictions = [{"text": "denver broncos", "score": 0.9}, {"text": "the cat", "score": 0.2}]
    metrics = task.metrics(predictions, annotations, TaskSettings())
    assert metrics["exact_match"] == pytest.approx(50.0)
    assert metrics["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert "HasAns_f1" not in metrics
    v2 = task.metrics([{"text": ""}], [{"answers": []}], TaskSettings(allow_unanswerable=True))
    assert v2["f1"] == 100.0 and v2["NoAns_total"] == 1
    assert task.prediction_score(predictions[1]) == 0.2
    assert task.stratify_key({"answers": []}) != task.stratify_key(annotations[0])


def test_pair_templates_of_other_tokenizers_are_followed(task, tokenizer):
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    # a RoBERTa-style template: two separators between the texts, one token type
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    roberta_like = Tokenizer.from_str(tokenizer.to_str())
    roberta_like.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] [SEP] $B:0 [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    example = {"context": long_context(100), "question": "which place?"}
    features = task.encode(roberta_like, [example], None, TaskSettings(max_length=48, stride=8))
    assert len(features) > 1
    for feature in features:
        assert len(feature) <= 48
        first_context = feature.sequence_ids.index(1)
        assert feature.input_ids[first_context - 2:first_context] == [sep, sep]
        assert feature.input_ids[0] == cls and feature.input_ids[-1] == sep
        assert set(feature.token_type_ids) == {0}


def test_a_tokenizer_without_classifier_token_is_refused(task, tokenizer):
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    sep = tokenizer.token_to_id("[SEP]")
    bare = Tokenizer.from_str(tokenizer.to_str())
    bare.post_processor = TemplateProcessing(single="$A [SEP]", pair="$A [SEP] $B:1 [SEP]:1",
                                             special_tokens=[("[SEP]", sep)])
    with pytest.raises(AnnotuneError, match="classifier token"):
        task.encode(bare, [{"context": "a b", "question": "c?"}], None, TaskSettings())
