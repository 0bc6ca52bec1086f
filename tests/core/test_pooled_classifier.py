"""A classifier on the pooling a sentence-transformers base model declares: build, fit, export."""

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch
import transformers

from annotune.core.errors import AnnotuneError
from annotune.core.export import export_run
from annotune.core.features import collate, pad_id, prepare_tokenizer
from annotune.core.plugins import registry
from annotune.core.tasks import TaskSettings
from annotune.core.training.model import load_model
from annotune.core.training.pooling import PooledClassifier, declared_pooling, fit_head, pool

# Real users' text: emoji, a ZWJ family, CJK, combining accents, RTL, CRLF; lengths differ so
# a batch of them is padded.
TEXTS = ["🍕", "Jose\u0301 loved the 👨‍👩‍👧 picnic\r\nand the pizza 🍕 too, truly a fine day out",
         "这部电影很好看", "הסרט היה נהדר", "الفيلم كان رائعا جدا ولكن طويل قليلا", "ok"]
SETTINGS = TaskSettings(labels=("neg", "pos", "mixed"))


def declare(folder, flags, normalize=True):
    """Write sentence-transformers' modules.json and 1_Pooling/config.json into ``folder``."""
    modules = [{"idx": 0, "name": "0", "path": "",
                "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (folder / "1_Pooling").mkdir(exist_ok=True)
    config = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
              "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
              "pooling_mode_mean_sqrt_len_tokens": False, **flags}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def mean_base(tmp_path_factory, tiny_base_model):
    folder = tmp_path_factory.mktemp("tiny-sentence-model") / "model"
    shutil.copytree(tiny_base_model, folder)
    return declare(folder, {"pooling_mode_mean_tokens": True})


def classifier(base, task_name="text-classification", settings=SETTINGS):
    return load_model(registry().task(task_name), settings, str(base)).model


def test_declared_mean_pooling_builds_the_pooled_classifier_with_the_encoders_weights(
        mean_base):
    model = classifier(mean_base)
    assert isinstance(model, PooledClassifier)
    assert (model.config.pooling, model.config.normalize) == ("mean", True)
    assert model.config.hidden_size == 32 and model.config.max_position_embeddings == 512
    assert model.config.id2label == {0: "neg", 1: "pos", 2: "mixed"}
    base = transformers.AutoModel.from_pretrained(mean_base)
    for name, value in base.embeddings.state_dict().items():
        assert torch.equal(model.encoder.embeddings.state_dict()[name], value), name
    # no pooler layer: no weights that never get a gradient
    assert not any(name.startswith("encoder.pooler") for name, _ in model.named_parameters())


def test_sentence_pairs_use_the_declared_pooling_too(mean_base):
    model = classifier(mean_base, "pair-classification",
                       TaskSettings(labels=("entailment", "not_entailment")))
    assert isinstance(model, PooledClassifier)


def test_a_model_without_declaration_keeps_transformers_head(tiny_base_model, tmp_path):
    assert type(classifier(tiny_base_model)) is transformers.BertForSequenceClassification
    # a pooling this head does not reproduce (max) keeps it as well
    folder = tmp_path / "max"
    shutil.copytree(tiny_base_model, folder)
    declare(folder, {"pooling_mode_max_tokens": True})
    assert declared_pooling(folder) is None
    assert type(classifier(folder)) is transformers.BertForSequenceClassification


def test_declared_cls_pooling_reads_the_first_token_state(tiny_base_model, tmp_path):
    folder = declare(tmp_path, {"pooling_mode_cls_token": True}, normalize=False)
    assert declared_pooling(folder) == {"pooling": "cls", "normalize": False}
    hidden = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    assert torch.equal(pool(hidden, torch.ones(2, 3), "cls"), hidden[:, 0])


def test_a_broken_declaration_is_refused_with_the_file_named(tmp_path):
    (tmp_path / "modules.json").write_text("[{", encoding="utf-8")
    with pytest.raises(AnnotuneError) as raised:
        declared_pooling(tmp_path)
    assert raised.value.where == str(tmp_path / "modules.json")


def encode(texts, tokenizer):
    task = registry().task("text-classification")
    return task.encode(tokenizer, [{"text": t} for t in texts], None, SETTINGS)


def test_padding_does_not_change_a_sentences_logits(mean_base):
    model = classifier(mean_base).eval()
    tokenizer = prepare_tokenizer(mean_base / "tokenizer.json")
    features = encode(TEXTS, tokenizer)
    assert len({len(f) for f in features}) > 3  # really padded
    pad = pad_id(tokenizer)
    batch = {k: torch.from_numpy(v) for k, v in collate(features, pad).items()}
    with torch.no_grad():
        together = model(**batch).logits
        alone = torch.cat([model(**{k: torch.from_numpy(v) for k, v in
                                    collate([f], pad).items()}).logits for f in features])
    assert torch.allclose(together, alone, atol=1e-5)


def test_mean_ignores_padded_positions_whatever_they_hold():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(pool(hidden, mask, "mean"), torch.tensor([[2.0, 3.0]]))


def test_save_reload_and_onnx_export_give_the_same_logits(mean_base, tmp_path):
    model = classifier(mean_base)
    with torch.no_grad():
        model.classifier.weight.normal_()  # a head that tells labels apart
    run = tmp_path / "run"
    model.save_pretrained(run / "model")
    transformers.AutoTokenizer.from_pretrained(mean_base).save_pretrained(run / "model")
    (run / "run.json").write_text(json.dumps({
        "task": "text-classification", "settings": SETTINGS.to_dict(), "config": {"epochs": 1},
        "metrics": {"accuracy": 0.5}, "base_model": "tiny", "device": "cpu",
        "samples": [{"text": t} for t in TEXTS]}), encoding="utf-8")

    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert isinstance(reloaded, PooledClassifier)
    tokenizer = prepare_tokenizer(run / "model" / "tokenizer.json")
    arrays = collate(encode(TEXTS, tokenizer), pad_id(tokenizer))
    with torch.no_grad():
        before = model.eval()(**{k: torch.from_numpy(v) for k, v in arrays.items()}).logits
        after = reloaded.eval()(**{k: torch.from_numpy(v) for k, v in arrays.items()}).logits
    assert torch.equal(before, after)

    report = export_run(run, tmp_path / "bundle")
    assert report.parity_max_diff <= 1e-4
    assert report.fused and report.fused["Attention"] == 2  # still fused as a BERT encoder
    session = ort.InferenceSession(str(report.model_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], arrays)
    np.testing.assert_allclose(logits, before.numpy(), atol=1e-4)


def test_fitted_head_separates_the_training_labels_before_any_fine_tuning(mean_base):
    model = classifier(mean_base, settings=TaskSettings(labels=("neg", "pos")))
    tokenizer = prepare_tokenizer(mean_base / "tokenizer.json")
    task = registry().task("text-classification")
    texts = TEXTS * 2
    labels = [{"label": "pos" if i % 2 else "neg"} for i in range(len(texts))]
    features = task.encode(tokenizer, [{"text": t} for t in texts], labels,
                           TaskSettings(labels=("neg", "pos")))
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}

    def inputs_for(batch):
        arrays = collate([features[i] for i in batch], pad_id(tokenizer), task,
                         with_targets=True)
        return {k: torch.from_numpy(v) for k, v in arrays.items()}

    every = inputs_for(range(len(features)))
    with torch.no_grad():
        loss_before = model.eval()(**every).loss
    model.train()
    assert fit_head(model, [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11]], inputs_for)
    assert model.training  # left as it was found
    with torch.no_grad():
        loss_after = model.eval()(**every).loss
    assert loss_after < loss_before * 0.8
    # only the head moved
    assert all(torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())


def test_fit_head_leaves_other_models_and_large_training_sets_alone(tiny_base_model, mean_base):
    assert fit_head(classifier(tiny_base_model), [[0]], lambda batch: {}) is False

    def unread(batch):
        raise AssertionError("a large training set was embedded")

    many = [list(range(start, start + 16)) for start in range(0, 16 * 17, 16)]  # 272 features
    assert fit_head(classifier(mean_base), many, unread) is False


def test_multi_label_keeps_its_loss(mean_base):
    settings = TaskSettings(labels=("a", "b", "c"), multi_label=True)
    model = classifier(mean_base, settings=settings).eval()
    assert model.config.problem_type == "multi_label_classification"
    inputs = {"input_ids": torch.tensor([[101, 2000, 102]]),
              "attention_mask": torch.ones(1, 3, dtype=torch.long),
              "labels": torch.tensor([[1.0, 0.0, 1.0]])}
    with torch.no_grad():
        output = model(**inputs)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(output.logits,
                                                                    inputs["labels"])
    assert torch.allclose(output.loss, expected)


def test_a_trained_run_reloads_and_exports(mean_base, tmp_path, sentiment_items, one_cpu_thread):
    from annotune.core.training.config import TrainConfig
    from annotune.core.training.loop import train

    settings = TaskSettings(labels=("neg", "pos"), max_length=32)
    config = TrainConfig(base_model=str(mean_base), epochs=2, batch_size=8, device="cpu",
                         seed=3)
    items = sentiment_items(24, 1) + [({"text": t}, {"label": "pos"}) for t in TEXTS]
    result = train(registry().task("text-classification"), settings, config, items,
                   sentiment_items(8, 2), tmp_path / "run")
    assert result.status == "finished"
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text(encoding="utf-8"))
    assert saved["model_type"] == "annotune-pooled-classifier" and saved["pooling"] == "mean"
    assert "_name_or_path" not in saved["encoder"]  # no folder of this machine in the model
    report = export_run(tmp_path / "run", tmp_path / "bundle")
    assert report.parity_max_diff <= 1e-4
