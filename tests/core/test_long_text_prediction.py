"""The torch-free Predictor reads a long text in windows and combines them like evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from annotune.core.export import export_run
from annotune.core.features import prepare_tokenizer
from annotune.core.inference import Predictor
from annotune.core.plugins import registry
from annotune.core.tasks import TaskSettings

SETTINGS = TaskSettings(labels=("neg", "pos"), max_length=16)
LONG = ("The opening is dull 😴 and slow, 漢字 but then مرحبا بالعالم שלום עולם — José "
        "sings, 👨‍👩‍👧 laugh, and the ending is wonderful 🍕.\r\n") * 4


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, tiny_base_model):
    """(run folder, bundle folder) of a tiny classifier whose windows hold 16 tokens."""
    root = tmp_path_factory.mktemp("long-classifier")
    task = registry().task("text-classification")
    torch.manual_seed(3)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_base_model, **task.model_kwargs(SETTINGS))
    with torch.no_grad():  # a random head barely moves its logits: widen them, so windows differ
        model.classifier.weight.mul_(30.0)
    run = root / "run"
    model.save_pretrained(run / "model")
    transformers.AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(run / "model")
    (run / "run.json").write_text(json.dumps({
        "task": task.name, "settings": SETTINGS.to_dict(), "config": {}, "metrics": {},
        "samples": [{"text": LONG}, {"text": "short"}]}), encoding="utf-8")
    return run, export_run(run, root / "bundle").bundle_dir


def window_mean_probabilities(run, text):
    """Probabilities from the mean of the windows' logits, each window run by PyTorch alone."""
    task = registry().task("text-classification")
    tokenizer = prepare_tokenizer(run / "model" / "tokenizer.json")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(run / "model").eval()
    features = task.encode(tokenizer, [{"text": text}], None, SETTINGS)
    with torch.inference_mode():
        logits = [model(input_ids=torch.tensor([f.input_ids]),
                        token_type_ids=torch.tensor([f.token_type_ids]),
                        attention_mask=torch.ones((1, len(f)), dtype=torch.long)
                        ).logits[0].numpy() for f in features]
    mean = np.mean(logits, axis=0)
    return len(features), np.exp(mean) / np.exp(mean).sum()


def test_the_predictor_combines_every_window_of_a_long_text(classifier):
    run, bundle = classifier
    windows, expected = window_mean_probabilities(run, LONG)
    assert windows > 3
    long, short = Predictor(bundle).predict([LONG, "short"])
    got = [long["probabilities"][label] for label in SETTINGS.labels]
    assert np.allclose(got, expected, atol=1e-4)
    first_window_only = window_mean_probabilities(run, LONG[:60])[1]
    assert not np.allclose(got, first_window_only, atol=1e-4)
    assert short["label"] in SETTINGS.labels
