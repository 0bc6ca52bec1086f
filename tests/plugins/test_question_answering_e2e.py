"""Question answering end to end on a tiny BERT: train → export an ONNX bundle → predict."""

from __future__ import annotations

import random

import pytest

from annotune.core.export import export_run
from annotune.core.inference import Predictor
from annotune.core.tasks import TaskSettings
from annotune.core.training.config import TrainConfig
from annotune.core.training.loop import train
from annotune.plugins.qa_postprocess import squad_scores
from annotune.plugins.question_answering import QuestionAnsweringTask

PEOPLE = ("alice", "bob", "carol", "david", "emma", "frank")
PLACES = ("paris", "london", "berlin", "madrid", "rome", "vienna")
FILLER = ("the", "met", "in", "went", "to", "yesterday", "and", "then", "quietly", "home")
QUESTIONS = ("who was there?", "who came?", "which person was it?")
# short windows so that the longer contexts need several of them
SETTINGS = TaskSettings(max_length=32, stride=8)


def make_items(n: int, seed: int, min_words: int = 4, max_words: int = 12):
    """Make contexts of filler words holding a person and a city (a distractor); ask who."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(min_words, max_words))]
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        words.insert(rng.randrange(len(words) + 1), person)
        words.insert(rng.randrange(len(words) + 1), place)
        context = " ".join(words)
        question, answer = rng.choice(QUESTIONS), person
        start = len(" ".join(words[:words.index(answer)])) + (1 if words.index(answer) else 0)
        assert context[start:start + len(answer)] == answer
        items.append(({"context": context, "question": question},
                      {"answers": [{"start": start, "text": answer}]}))
    return items


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_base_model):
    config = TrainConfig(base_model=str(tiny_base_model), epochs=3, learning_rate=3e-3,
                         batch_size=16, warmup_ratio=0.1, early_stopping_patience=0,
                         device="cpu", seed=3)
    out_dir = tmp_path_factory.mktemp("qa-run")
    # some long contexts, so windows without the answer learn to point at [CLS]
    train_items = make_items(96, seed=1) + make_items(24, seed=4, min_words=30, max_words=45)
    return train(QuestionAnsweringTask(), SETTINGS, config, train_items, make_items(24, seed=2),
                 out_dir, progress_interval=0.0)


def test_training_learns_to_point_at_the_answer(trained):
    assert trained.status == "finished"
    assert trained.metrics["f1"] >= 90.0, trained.history
    assert set(trained.metrics) >= {"exact_match", "f1", "total"}


def test_exported_bundle_answers_without_torch(trained, tmp_path):
    report = export_run(trained.out_dir, tmp_path / "bundle")
    predictor = Predictor(report.bundle_dir)
    assert predictor.task.name == "question-answering"
    assert (predictor.settings.max_length, predictor.settings.stride) == (32, 8)
    # short contexts and long ones that span several 32-token windows
    items = make_items(24, seed=5) + make_items(8, seed=6, min_words=40, max_words=60)
    predictions = predictor.predict([fields for fields, _ in items])
    for (fields, _), prediction in zip(items, predictions, strict=True):
        assert prediction["text"] == fields["context"][prediction["start"]:prediction["end"]]
        assert 0.0 <= predictor.score(prediction) <= 1.0
    scores = squad_scores([p["text"] for p in predictions],
                          [[a["text"] for a in ann["answers"]] for _, ann in items])
    assert scores["exact_match"] >= 85.0, (scores, predictions)
    # the long contexts really are cut into windows, and their answers are still found
    long_items = items[24:]
    features = predictor.task.encode(predictor.tokenizer, [f for f, _ in long_items], None,
                                     predictor.settings)
    assert len(features) >= 3 * len(long_items)
    found = [p["text"] == ann["answers"][0]["text"]
             for (_, ann), p in zip(long_items, predictions[24:], strict=True)]
    assert sum(found) >= 6, predictions[24:]
