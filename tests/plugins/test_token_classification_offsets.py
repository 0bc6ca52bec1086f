"""NER predictions land on whole characters and, when the input has tokens, on whole tokens."""

import numpy as np
import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.tasks import TaskSettings
from annotune.plugins.token_classification import IGNORE_INDEX, TokenClassificationTask

LABELS = ("PER", "LOC")
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SETTINGS = TaskSettings(labels=LABELS)


@pytest.fixture
def task():
    return TokenClassificationTask()


def span(text, piece, label):
    start = text.index(piece)
    return {"start": start, "end": start + len(piece), "label": label}


def plain(spans):
    return [(s["start"], s["end"], s["label"]) for s in spans]


def oracle_outputs(features):
    """Logits that predict each window's training tags (ignored positions: O)."""
    outputs = []
    for feature in features:
        logits = np.zeros((len(feature), len(TAGS)))
        for position, tag in enumerate(feature.target):
            logits[position, 0 if tag == IGNORE_INDEX else tag] = 8.0
        outputs.append({"logits": logits})
    return outputs


def predict_gold(task, tokenizer, example, spans):
    """Encode an example with its spans and decode the logits that predict exactly them."""
    annotation = task.validate({"spans": spans}, example, SETTINGS)
    features = task.encode(tokenizer, [example], [annotation], SETTINGS)
    [prediction] = task.decode([example], features, oracle_outputs(features), SETTINGS)
    return prediction


# -- whole grapheme clusters -------------------------------------------------------------------
@pytest.mark.parametrize("text, entity, label", [
    ("Jose\u0301 lives in Lyon", "Jose\u0301", "PER"),  # combining accent, first word
    ("We met Jose\u0301 today", "Jose\u0301", "PER"),  # in the middle
    ("Our guest was Jose\u0301", "Jose\u0301", "PER"),  # at the very end
    ("Chloe\u0308 Dupre\u0301 is here", "Chloe\u0308 Dupre\u0301", "PER"),
    ("زرت كتابٌ أمس", "كتابٌ", "LOC"),  # Arabic tanween ends the word
    ("I ❤️ Paris", "❤️", "LOC"),  # an emoji with its variation selector
    ("नमस्ते दिल्ली", "नमस्ते", "PER"),  # a Devanagari conjunct with its vowel sign
])
def test_predicted_spans_keep_combining_marks_and_emoji_sequences(task, tokenizer, text,
                                                                  entity, label):
    # the normaliser strips marks, so the model's tokens end before them
    prediction = predict_gold(task, tokenizer, {"text": text}, [span(text, entity, label)])
    assert [s["text"] for s in prediction["spans"]] == [entity]
    assert plain(prediction["spans"]) == plain([span(text, entity, label)])


def test_crlf_and_zwj_text_keeps_every_span_whole(task, tokenizer):
    family = "👨\u200d👩\u200d👧"
    text = f"Jose\u0301\r\nmet the {family} in Lyon\r\n"
    spans = [span(text, "Jose\u0301", "PER"), span(text, "Lyon", "LOC")]
    prediction = predict_gold(task, tokenizer, {"text": text}, spans)
    assert [s["text"] for s in prediction["spans"]] == ["Jose\u0301", "Lyon"]


# -- given tokens --------------------------------------------------------------------------------
def hand_logits(task, tokenizer, example, tags_by_piece):
    """Encode without targets and give each word piece the tag named for it (else O)."""
    [feature] = task.encode(tokenizer, [example], None, SETTINGS)
    logits = np.zeros((len(feature), len(TAGS)))
    logits[:, 0] = 5.0
    for position, (start, end) in enumerate(feature.offsets):
        if feature.sequence_ids[position] != 0:
            continue
        tag = tags_by_piece.get((example["text"][start:end], start))
        if tag is not None:
            logits[position] = 0.0
            logits[position, TAGS.index(tag)] = 9.0
    return feature, {"logits": logits}


def test_given_tokens_make_every_predicted_span_whole_tokens(task, tokenizer):
    # CoNLL-2003 keeps "Mr." and "U.S." as one token each; the tokenizer splits them
    tokens = ["Mr.", "Young", "met", "U.S.", "troops", "."]
    text = " ".join(tokens)
    # a model that puts B-PER on the "." of "Mr." and B-LOC on the "S" of "U.S."
    tags = {(".", 2): "B-PER", ("Young", 4): "I-PER", ("S", 16): "B-LOC"}
    feature, output = hand_logits(task, tokenizer, {"text": text, "tokens": tokens}, tags)
    [with_tokens] = task.decode([{"text": text, "tokens": tokens}], [feature], [output],
                                SETTINGS)
    # each token takes its first piece's tag: "Mr." is O, "Young" opens PER, "U.S." is O
    assert [(s["text"], s["label"]) for s in with_tokens["spans"]] == [("Young", "PER")]
    starts = {a for a, _ in _token_offsets(text, tokens)}
    ends = {b for _, b in _token_offsets(text, tokens)}
    assert all(s["start"] in starts and s["end"] in ends for s in with_tokens["spans"])
    # the same logits read without the tokens cut them (what a plain text gets)
    feature, output = hand_logits(task, tokenizer, {"text": text}, tags)
    [without] = task.decode([{"text": text}], [feature], [output], SETTINGS)
    assert [s["text"] for s in without["spans"]] == [". Young", "S"]


def _token_offsets(text, tokens):
    offsets, position = [], 0
    for token in tokens:
        position = text.index(token, position)
        offsets.append((position, position + len(token)))
        position += len(token)
    return offsets


def test_given_tokens_train_on_each_tokens_first_piece(task, tokenizer):
    tokens = ["Mr.", "Young", "visited", "St.Louis", "."]
    example = {"text": " ".join(tokens), "tokens": tokens}
    spans = [span(example["text"], "Young", "PER"), span(example["text"], "St.Louis", "LOC")]
    annotation = task.validate({"spans": spans}, example, SETTINGS)
    [feature] = task.encode(tokenizer, [example], [annotation], SETTINGS)
    pieces = [tokenizer.id_to_token(i) for i in feature.input_ids]
    trained = [(piece, TAGS[tag]) for piece, tag in zip(pieces, feature.target, strict=True)
               if tag != IGNORE_INDEX]
    # "." of "Mr." and the pieces after "st" of "St.Louis" belong to their tokens
    assert trained == [("mr", "O"), ("young", "B-PER"), ("visited", "O"), ("st", "B-LOC"),
                       (".", "O")]
    prediction = predict_gold(task, tokenizer, example, spans)
    assert plain(prediction["spans"]) == plain(spans)


def test_given_tokens_of_text_without_spaces_and_with_emoji(task, tokenizer):
    tokens = ["東京", "に", "行った", "Jose\u0301", "🍕", "👨\u200d👩\u200d👧"]
    text = "東京に行った Jose\u0301 🍕 👨\u200d👩\u200d👧"
    spans = [span(text, "東京", "LOC"), span(text, "Jose\u0301", "PER")]
    prediction = predict_gold(task, tokenizer, {"text": text, "tokens": tokens}, spans)
    assert [s["text"] for s in prediction["spans"]] == ["東京", "Jose\u0301"]


@pytest.mark.parametrize("tokens, problem", [
    (["Ada", "met", "Bob"], "token 3 'Bob' does not continue the text"),
    (["Ada", "met"], "the tokens end at character 7"),
    ("Ada met Ann", "must be a list of non-empty strings"),
    (["Ada", "", "met"], "must be a list of non-empty strings"),
])
def test_tokens_that_do_not_fit_the_text_are_refused_with_the_example(task, tokenizer,
                                                                      tokens, problem):
    example = {"text": "Ada met Ann", "tokens": tokens}
    with pytest.raises(AnnotuneError) as error:
        task.encode(tokenizer, [{"text": "fine"}, example], None, SETTINGS)
    assert problem in str(error.value)
    assert "example 2" in str(error.value) and "tokens" in str(error.value)
