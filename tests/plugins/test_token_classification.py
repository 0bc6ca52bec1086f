"""NER task: span ↔ word-piece alignment, windows over long texts, decoding and metrics."""


import numpy as np
import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.features import collate
from annotune.core.plugins import build_registry
from annotune.core.tasks import TaskSettings
from annotune.plugins.token_classification import (
    IGNORE_INDEX,
    TokenClassificationTask,
    tag_names,
    window_starts,
)

LABELS = ("PER", "LOC")
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture
def task():
    return TokenClassificationTask()


@pytest.fixture
def settings():
    return TaskSettings(labels=LABELS)


def span(text, piece, label, occurrence=0):
    """Build a span over the n-th occurrence of piece in text."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    return {"start": start, "end": start + len(piece), "label": label}


def token_tags(tokenizer, feature):
    """Pair each token of a window with its training tag name (None when ignored)."""
    tokens = [tokenizer.id_to_token(i) for i in feature.input_ids]
    return [(token, None if tag == IGNORE_INDEX else TAGS[tag])
            for token, tag in zip(tokens, feature.target, strict=True)]


def oracle_outputs(features):
    """Logits that predict each window's training tags; ignored positions get a wrong tag."""
    noise_tag = len(TAGS) - 1
    outputs = []
    for feature in features:
        logits = np.zeros((len(feature), len(TAGS)), dtype=np.float32)
        for position, tag in enumerate(feature.target):
            logits[position, noise_tag if tag == IGNORE_INDEX else tag] = 8.0
        outputs.append({"logits": logits})
    return outputs


def round_trip(task, tokenizer, text, spans, settings):
    """Encode with targets, decode the oracle logits, return (features, predicted spans)."""
    annotation = task.validate({"spans": spans}, {"text": text}, settings)
    features = task.encode(tokenizer, [{"text": text}], [annotation], settings)
    [prediction] = task.decode([{"text": text}], features, oracle_outputs(features), settings)
    return features, prediction


def plain(spans):
    return [{k: s[k] for k in ("start", "end", "label")} for s in spans]


def test_registered_with_its_contract(task, settings):
    registered = build_registry().task("token-classification")
    assert isinstance(registered, TokenClassificationTask)
    assert (task.annotation_kind, task.fields, task.auto_model) == (
        "spans", ("text",), "AutoModelForTokenClassification")
    assert task.sequence_outputs and task.main_metric == "f1"
    kwargs = task.model_kwargs(settings)
    assert kwargs["num_labels"] == 5
    assert kwargs["id2label"] == dict(enumerate(TAGS))
    assert kwargs["label2id"]["I-LOC"] == 4
    assert tag_names(("A",)) == ["O", "B-A", "I-A"]


def test_validate_returns_sorted_spans_and_refuses_bad_ones(task, settings):
    text = "Ada met Bob in Rome"
    got = task.validate({"spans": [span(text, "Rome", "LOC"), span(text, "Ada", "PER")]},
                        {"text": text}, settings)
    assert got == {"spans": [span(text, "Ada", "PER"), span(text, "Rome", "LOC")]}
    with pytest.raises(AnnotuneError, match="unknown type 'ORG'"):
        task.validate({"spans": [span(text, "Bob", "ORG")]}, {"text": text}, settings)
    with pytest.raises(AnnotuneError, match="overlaps"):
        task.validate({"spans": [span(text, "Ada", "PER"), {"start": 1, "end": 7, "label": "PER"}]},
                      {"text": text}, settings)
    with pytest.raises(AnnotuneError, match="'spans' list"):
        task.validate({"label": "PER"}, {"text": text}, settings)


def test_check_settings_refuses_tag_like_labels(task):
    task.check_settings(TaskSettings(labels=("PER",)))
    for labels in (("O",), ("B-PER",), ("NEW YORK",), ()):
        with pytest.raises(AnnotuneError):
            task.check_settings(TaskSettings(labels=labels))


def test_sub_words_train_on_the_first_piece_only(task, tokenizer, settings):
    text = "Schwarzenegger met Merkel in Bruxelles."
    spans = [span(text, "Schwarzenegger", "PER"), span(text, "Merkel", "PER"),
             span(text, "Bruxelles", "LOC")]
    features, prediction = round_trip(task, tokenizer, text, spans, settings)
    assert token_tags(tokenizer, features[0]) == [
        ("[CLS]", None), ("schwarz", "B-PER"), ("##ene", None), ("##gger", None), ("met", "O"),
        ("mer", "B-PER"), ("##kel", None), ("in", "O"), ("br", "B-LOC"), ("##ux", None),
        ("##elles", None), (".", "O"), ("[SEP]", None)]
    assert plain(prediction["spans"]) == spans
    assert [s["text"] for s in prediction["spans"]] == ["Schwarzenegger", "Merkel", "Bruxelles"]


def test_punctuation_inside_and_around_entities(task, tokenizer, settings):
    text = "Jean-Pierre Dupont (Paris)."
    spans = [span(text, "Jean-Pierre Dupont", "PER"), span(text, "Paris", "LOC")]
    features, prediction = round_trip(task, tokenizer, text, spans, settings)
    assert token_tags(tokenizer, features[0])[1:-1] == [
        ("jean", "B-PER"), ("-", "I-PER"), ("pierre", "I-PER"), ("dupont", "I-PER"),
        ("(", "O"), ("paris", "B-LOC"), (")", "O"), (".", "O")]
    assert plain(prediction["spans"]) == spans


def test_unicode_offsets_count_characters_of_the_original_text(task, tokenizer, settings):
    # accents are stripped by the normaliser, CJK characters are words of their own, the
    # emoji and the flag (two code points) become [UNK]: offsets still point into this text
    text = "Zoë Saldaña visited 東京 😀 with José 🇫🇷 Ñandú."
    spans = [span(text, "Zoë Saldaña", "PER"), span(text, "東京", "LOC"),
             span(text, "José", "PER"), span(text, "Ñandú", "LOC")]
    features, prediction = round_trip(task, tokenizer, text, spans, settings)
    tagged = token_tags(tokenizer, features[0])
    assert ("東", "B-LOC") in tagged and ("京", "I-LOC") in tagged
    assert ("[UNK]", "O") in tagged
    assert plain(prediction["spans"]) == spans
    assert [s["text"] for s in prediction["spans"]] == ["Zoë Saldaña", "東京", "José", "Ñandú"]


def test_emoji_entity_is_found_by_its_offsets(task, tokenizer, settings):
    text = "Meet 😀 today"
    spans = [span(text, "😀", "PER")]
    _, prediction = round_trip(task, tokenizer, text, spans, settings)
    assert prediction["spans"][0]["text"] == "😀"
    assert plain(prediction["spans"]) == spans


def test_window_starts_cover_every_token():
    assert window_starts(0, 8, 2) == [0]
    assert window_starts(8, 8, 2) == [0]
    assert window_starts(20, 8, 2) == [0, 6, 12]
    assert window_starts(21, 8, 2) == [0, 6, 12, 13]  # the last window ends at the last token
    assert window_starts(20, 8, 128) == [0, 6, 12]  # stride >= window: a quarter overlaps
    for n in range(1, 60):
        for window, stride in ((8, 2), (5, 0), (1, 0), (16, 128)):
            starts = window_starts(n, window, stride)
            covered = set()
            for start in starts:
                covered.update(range(start, min(start + window, n)))
            assert covered == set(range(n)), (n, window, stride)


@pytest.mark.parametrize("stride", [3, 128])
def test_long_text_becomes_windows_without_dropping_a_token(task, tokenizer, stride):
    settings = TaskSettings(labels=LABELS, max_length=16, stride=stride)
    words = []
    for i in range(60):
        words += [f"Person{i}", "visited", "Rome" if i % 2 else "Nairobi", "twice", "."]
    text = " ".join(words)
    spans = [span(text, f"Person{i}", "PER") for i in range(60)]
    spans += [span(text, "Rome", "LOC", i) for i in range(30)]
    spans += [span(text, "Nairobi", "LOC", i) for i in range(30)]
    spans.sort(key=lambda s: s["start"])
    features, prediction = round_trip(task, tokenizer, text, spans, settings)
    full = tokenizer.encode(text, add_special_tokens=False)
    assert len(features) > 10
    rebuilt = {}
    for feature in features:
        assert len(feature) <= 16
        assert feature.input_ids[0] == tokenizer.token_to_id("[CLS]")
        assert feature.input_ids[-1] == tokenizer.token_to_id("[SEP]")
        for position, token_id in enumerate(feature.input_ids[1:-1]):
            rebuilt.setdefault(feature.token_start + position, token_id)
    assert [rebuilt[i] for i in range(len(full.ids))] == full.ids
    # every word's first piece is trained in at least one window
    trained = {f.token_start + p - 1 for f in features
               for p, t in enumerate(f.target) if t != IGNORE_INDEX and f.sequence_ids[p] == 0}
    firsts = {i for i, w in enumerate(full.word_ids) if i == 0 or w != full.word_ids[i - 1]}
    assert firsts <= trained
    assert plain(prediction["spans"]) == spans


def test_entity_across_a_window_border(task, tokenizer):
    # 8 text tokens per window, 2 shared: window 0 holds tokens 0-7, window 1 tokens 6-13
    settings = TaskSettings(labels=LABELS, max_length=10, stride=2)
    text = "a b c d e f g Ada Lovelace h i j k"  # 14 tokens: "lovelace" is two pieces
    spans = [span(text, "Ada Lovelace", "PER")]
    features, prediction = round_trip(task, tokenizer, text, spans, settings)
    assert [f.token_start for f in features] == [0, 6]
    assert token_tags(tokenizer, features[0])[-2:] == [("ada", "B-PER"), ("[SEP]", None)]
    assert token_tags(tokenizer, features[1])[2:5] == [
        ("ada", "B-PER"), ("love", "I-PER"), ("##lace", None)]
    assert plain(prediction["spans"]) == spans


def test_token_in_two_windows_takes_the_window_with_more_context(task, tokenizer):
    settings = TaskSettings(labels=LABELS, max_length=10, stride=4)
    text = "a b c d e f g Ada h i j k"  # "ada" is token 7: last of window 0, in window 1 too
    features = task.encode(tokenizer, [{"text": text}], None, settings)
    assert [f.token_start for f in features] == [0, 4]
    outputs = []
    for feature in features:
        logits = np.zeros((len(feature), len(TAGS)))
        logits[:, 0] = 5.0
        outputs.append({"logits": logits})
    outputs[0]["logits"][8] = [0, 0, 0, 9, 0]  # window 0, at its edge: LOC
    outputs[1]["logits"][4] = [0, 9, 0, 0, 0]  # window 1, in its middle: PER
    [prediction] = task.decode([{"text": text}], features, outputs, settings)
    assert plain(prediction["spans"]) == [span(text, "Ada", "PER")]


def test_decode_hand_made_logits(task, tokenizer, settings):
    text = "Ada Lovelace visited Rome Paris Bruxelles"
    features = task.encode(tokenizer, [{"text": text}], None, settings)
    tokens = [tokenizer.id_to_token(i) for i in features[0].input_ids]
    assert tokens == ["[CLS]", "ada", "love", "##lace", "visited", "rome", "paris", "br", "##ux",
                      "##elles", "[SEP]"]
    p_hi = 0.9  # softmax of [x, 0, 0, 0, 0] gives p_hi on x when e^x = 4 * p_hi / (1 - p_hi)
    hi = np.log(4 * p_hi / (1 - p_hi))
    p_lo = 0.6
    lo = np.log(4 * p_lo / (1 - p_lo))

    def row(tag, value=hi):
        logits = np.zeros(len(TAGS))
        logits[TAGS.index(tag)] = value
        return logits

    logits = np.stack([
        row("O"),             # [CLS] (ignored)
        row("B-PER"),         # ada
        row("I-PER", lo),     # love
        row("B-LOC"),         # ##lace (ignored: not a first piece)
        row("O"),             # visited
        row("I-LOC"),         # rome: I- after O opens an entity
        row("I-PER"),         # paris: I- of another type opens another one
        row("B-LOC", lo),     # br: the word's tag is its first piece's
        row("O"),             # ##ux (ignored: not a first piece)
        row("I-PER"),         # ##elles (ignored)
        row("O"),             # [SEP]
    ])
    [prediction] = task.decode([{"text": text}], features, [{"logits": logits}], settings)
    assert prediction["spans"] == [
        {"start": 0, "end": 12, "label": "PER", "text": "Ada Lovelace",
         "score": pytest.approx((p_hi + p_lo) / 2)},
        {"start": 21, "end": 25, "label": "LOC", "text": "Rome", "score": pytest.approx(p_hi)},
        {"start": 26, "end": 31, "label": "PER", "text": "Paris", "score": pytest.approx(p_hi)},
        {"start": 32, "end": 41, "label": "LOC", "text": "Bruxelles",
         "score": pytest.approx(p_lo)},
    ]
    assert task.prediction_score(prediction) == pytest.approx(p_lo)  # the weakest entity


def test_no_entities_scores_by_mean_o_probability(task, tokenizer, settings):
    text = "nothing here"
    features = task.encode(tokenizer, [{"text": text}], None, settings)
    logits = np.zeros((len(features[0]), len(TAGS)))
    logits[1, 0] = np.log(4 * 0.8 / 0.2)  # P(O) = 0.8
    logits[2, 0] = np.log(4 * 0.6 / 0.4)  # P(O) = 0.6
    [prediction] = task.decode([{"text": text}], features, [{"logits": logits}], settings)
    assert prediction["spans"] == []
    assert task.prediction_score(prediction) == pytest.approx(0.7)


def test_empty_text_and_several_examples(task, tokenizer, settings):
    examples = [{"text": ""}, {"text": "Ada"}]
    annotations = [{"spans": []}, {"spans": [{"start": 0, "end": 3, "label": "PER"}]}]
    features = task.encode(tokenizer, examples, annotations, settings)
    assert [f.example_index for f in features] == [0, 1]
    assert features[0].target == [IGNORE_INDEX, IGNORE_INDEX]
    predictions = task.decode(examples, features, oracle_outputs(features), settings)
    assert predictions[0] == {"spans": [], "score": 1.0}
    assert plain(predictions[1]["spans"]) == annotations[1]["spans"]


def test_collate_pads_targets_with_ignore_index(task, tokenizer, settings):
    examples = [{"text": "Ada"}, {"text": "Ada met Bob in Rome"}]
    annotations = [{"spans": [{"start": 0, "end": 3, "label": "PER"}]}, {"spans": []}]
    features = task.encode(tokenizer, examples, annotations, settings)
    batch = collate(features, 0, task, with_targets=True)
    assert batch["labels"].shape == batch["input_ids"].shape == (2, 7)
    assert batch["labels"][0].tolist() == [IGNORE_INDEX, 1] + [IGNORE_INDEX] * 5
    assert batch["labels"][1, 1:6].tolist() == [0] * 5


def test_metrics_are_entity_level(task, settings):
    gold = [{"spans": [{"start": 0, "end": 3, "label": "PER"},
                       {"start": 8, "end": 12, "label": "LOC"}]}]
    predicted = [{"spans": [{"start": 0, "end": 3, "label": "PER", "text": "Ada", "score": 0.9},
                            {"start": 8, "end": 11, "label": "LOC", "text": "Rom", "score": 0.8}]}]
    scores = task.metrics(predicted, gold, settings)
    assert scores[task.main_metric] == pytest.approx(0.5)  # P = R = 1/2
    assert scores["per_type"]["PER"]["f1"] == 1.0
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                         "support": 1}


def test_annotation_from_table_cell(task, settings):
    assert task.annotation_from_value('[[0, 3, "PER"]]', settings) == {
        "spans": [{"start": 0, "end": 3, "label": "PER"}]}
    assert task.annotation_from_value("", settings) == {"spans": []}
    # a JSONL label key arrives already parsed
    assert task.annotation_from_value([[4, 7, "LOC"]], settings) == {
        "spans": [{"start": 4, "end": 7, "label": "LOC"}]}
    with pytest.raises(AnnotuneError, match="not a list of spans"):
        task.annotation_from_value(3, settings)
    with pytest.raises(AnnotuneError, match="not JSON"):
        task.annotation_from_value("PER", settings)
    assert task.stratify_key({"spans": [{"label": "LOC"}, {"label": "PER"},
                                        {"label": "PER"}]}) == "PER"
    assert task.stratify_key({"spans": []}) == ""
