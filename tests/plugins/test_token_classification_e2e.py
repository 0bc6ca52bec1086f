"""NER end to end on a tiny BERT: train → export an ONNX bundle → predict spans without torch."""

from __future__ import annotations

import random

import pytest

from annotune.core.export import export_run
from annotune.core.inference import Predictor
from annotune.core.tasks import TaskSettings
from annotune.core.training.config import TrainConfig
from annotune.core.training.loop import train
from annotune.plugins.spans import entity_scores
from annotune.plugins.token_classification import TokenClassificationTask

PEOPLE = ("Alice", "Bob", "Chidi", "Dagny", "Emil", "Farida")
PLACES = ("Oslo", "Lima", "Hanoi", "Quito", "Accra", "Turin")
FILLER = ("the", "met", "in", "went", "to", "yesterday", "and", "then", "quietly", "home")
SETTINGS = TaskSettings(labels=("PER", "LOC"), max_length=24, stride=6)


def make_items(n: int, seed: int, min_words: int = 3, max_words: int = 9):
    """Make texts of filler words with names (PER) and cities (LOC) at random places."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        words = [(rng.choice(FILLER), None) for _ in range(rng.randint(min_words, max_words))]
        for _ in range(rng.randint(1, 3)):
            label = rng.choice(("PER", "LOC"))
            word = rng.choice(PEOPLE if label == "PER" else PLACES)
            words.insert(rng.randrange(len(words) + 1), (word, label))
        text, spans = "", []
        for word, label in words:
            if text:
                text += " "
            if label:
                spans.append({"start": len(text), "end": len(text) + len(word), "label": label})
            text += word
        items.append(({"text": text}, {"spans": spans}))
    return items


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_base_model):
    task = TokenClassificationTask()
    config = TrainConfig(base_model=str(tiny_base_model), epochs=6, learning_rate=4e-3,
                         batch_size=16, warmup_ratio=0.1, early_stopping_patience=0,
                         device="cpu", seed=3)
    out_dir = tmp_path_factory.mktemp("ner-run")
    result = train(task, SETTINGS, config, make_items(96, seed=1), make_items(24, seed=2),
                   out_dir, progress_interval=0.0)
    return result


def test_training_learns_the_entities(trained):
    assert trained.status == "finished"
    assert trained.metrics["f1"] >= 0.9, trained.history
    assert set(trained.metrics["per_type"]) == {"PER", "LOC"}


def test_exported_bundle_predicts_spans_without_torch(trained, tmp_path):
    report = export_run(trained.out_dir, tmp_path / "bundle")
    predictor = Predictor(report.bundle_dir)
    assert predictor.task.name == "token-classification"
    # long texts (several windows of 24 tokens) as well as short ones
    items = make_items(12, seed=5) + make_items(4, seed=6, min_words=40, max_words=60)
    predictions = predictor.predict([fields["text"] for fields, _ in items])
    for (fields, _), prediction in zip(items, predictions, strict=True):
        for span in prediction["spans"]:
            assert span["text"] == fields["text"][span["start"]:span["end"]]
            assert 0.0 < span["score"] <= 1.0
        assert 0.0 <= predictor.score(prediction) <= 1.0
    scores = entity_scores([a["spans"] for _, a in items], [p["spans"] for p in predictions])
    assert scores["f1"] >= 0.85, scores


def test_bundle_predictions_on_given_tokens_are_whole_tokens(trained, tmp_path):
    # pre-tokenized input where punctuation sticks to the names, as in many corpora
    predictor = Predictor(export_run(trained.out_dir, tmp_path / "bundle").bundle_dir)
    items = []
    for fields, annotation in make_items(12, seed=7):
        text = fields["text"]
        for span in reversed(annotation["spans"]):
            text = text[:span["end"]] + "," + text[span["end"]:]
        items.append({"text": text, "tokens": text.split(" ")})
    predictions = predictor.predict(items)
    found = 0
    for item, prediction in zip(items, predictions, strict=True):
        starts, ends, position = set(), set(), 0
        for token in item["tokens"]:
            starts.add(position)
            ends.add(position + len(token))
            position += len(token) + 1
        for span in prediction["spans"]:
            assert span["start"] in starts and span["end"] in ends, (item, span)
            assert span["text"].endswith(",")
            found += 1
    assert found >= 12
