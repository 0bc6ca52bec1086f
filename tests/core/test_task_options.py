"""Options a task declares itself: checked values, one accessor, and files of the older shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.plugins import registry
from annotune.core.store import Project
from annotune.core.tasks import TaskOption, TaskSettings
from annotune.plugins.classification import MULTI_LABEL, THRESHOLDS
from annotune.plugins.question_answering import N_BEST

LABELS = ("🍕 food", "José", "Jose\u0301", "家族 👨‍👩‍👧", "مطعم")

# Settings as projects, run records and bundles stored them before tasks declared options:
# every built-in task's keys at the top level, whatever the task.
OLD_MULTI_LABEL = {"labels": list(LABELS), "multi_label": True,
                   "thresholds": [0.2, 0.9, 0.5, 0.35, 0.6], "max_length": 64, "stride": 16,
                   "allow_unanswerable": False, "max_answer_length": 30, "n_best": 20}
OLD_QA = {"labels": [], "multi_label": False, "thresholds": [], "max_length": 384,
          "stride": 128, "allow_unanswerable": True, "max_answer_length": 3, "n_best": 2}


@pytest.mark.parametrize("name", ["token-classification", "pair-classification",
                                  "question-answering", "text-classification"])
def test_old_settings_of_every_built_in_task_pass_its_checks(name):
    """Old files carry every task's keys: a task without those options must not refuse them."""
    task = registry().task(name)
    old = {**OLD_QA, "labels": ["PER", "LOC"] if task.needs_labels else []}
    settings = task.settings_from_dict(old)
    assert set(settings.options) <= {option.name for option in task.options}
    task.check_settings(settings)
    assert task.check_settings(task.with_labels(settings, ["家族"]) if task.needs_labels
                               else settings) is None


def test_an_option_value_that_does_not_fit_names_the_option_the_value_and_what_fits():
    qa = registry().task("question-answering")
    with pytest.raises(AnnotuneError) as error:
        qa.check_settings(qa.default_settings().with_(n_best=0))
    text = str(error.value)
    assert "n_best" in text and "'0'" in text and "a whole number of at least 1" in text
    with pytest.raises(AnnotuneError, match="allow_unanswerable.*yes or no"):
        qa.check_settings(qa.default_settings().with_(allow_unanswerable="sometimes"))
    with pytest.raises(AnnotuneError, match="thresholds.*from 0.0 to 1.0"):
        THRESHOLDS.validate([0.5, 1.5])
    with pytest.raises(AnnotuneError, match="n_best"):
        N_BEST.validate(True)  # a bool is no count, though Python calls it an int


def test_an_option_of_another_task_is_refused_by_name():
    ner = registry().task("token-classification")
    settings = ner.default_settings().with_(labels=("PER",), multi_label=True)
    with pytest.raises(AnnotuneError, match="does not support multi-label"):
        ner.check_settings(settings)


def test_typed_values_are_read_as_people_write_them():
    assert MULTI_LABEL.parse(" yes ") is True and MULTI_LABEL.parse("off") is False
    assert THRESHOLDS.parse("0.3, 0.7") == (0.3, 0.7)
    assert N_BEST.parse("5") == 5
    with pytest.raises(AnnotuneError, match="n_best cannot be 'five'"):
        N_BEST.parse("five")
    choice = TaskOption("casing", str, "keep", "how texts are cased", choices=("keep", "lower"))
    assert choice.parse("lower") == "lower"
    with pytest.raises(AnnotuneError, match="one of keep, lower"):
        choice.parse("upper")


def test_the_accessor_falls_back_to_the_declared_default():
    qa = registry().task("question-answering")
    settings = qa.default_settings()
    assert settings.option("n_best") == 20 and settings.option(N_BEST) == 20
    assert settings.with_(n_best=5).option("n_best") == 5
    assert TaskSettings().option(N_BEST) == 20  # the declaration carries its default
    with pytest.raises(AnnotuneError, match="no option 'n_bets'"):
        settings.option("n_bets")
    assert settings.option("multi_label", False) is False  # code serving several tasks


def test_settings_survive_json_and_keep_shared_fields_apart():
    task = registry().task("text-classification")
    settings = task.default_settings().with_(labels=LABELS, multi_label=True,
                                             thresholds=(0.2, 0.9, 0.5, 0.35, 0.6))
    stored = json.loads(json.dumps(settings.to_dict()))
    assert stored["options"] == {"multi_label": True, "thresholds": [0.2, 0.9, 0.5, 0.35, 0.6]}
    # written at the top level too, where versions before task options read them
    assert stored["multi_label"] is True and stored["labels"] == list(LABELS)
    assert task.settings_from_dict(stored) == settings
    assert hash(task.settings_from_dict(stored)) == hash(settings)  # still a cache key
    with pytest.raises(ValueError, match="not a JSON object"):
        TaskSettings.from_dict({"options": [1, 2]})


def test_a_task_option_cannot_take_a_shared_name():
    for taken in ("labels", "max_length", "stride", "options", "declared", "not a name"):
        with pytest.raises(ValueError, match="cannot be called"):
            TaskOption(taken, tuple, (), "clash")
    with pytest.raises(ValueError, match="type must be"):
        TaskOption("ratio", complex, 0j, "no such form field")


def _logits(n: int, k: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    return [{"logits": rng.normal(size=k).astype(np.float32)} for _ in range(n)]


def test_an_old_multi_label_project_loads_and_decides_as_before(tmp_path, tokenizer):
    task = registry().task("text-classification")
    path = tmp_path / "tags 🍕.annotune"
    Project.create(path, task=task.name, settings=TaskSettings(labels=LABELS)).close()
    project = Project.open(path)
    with project.db.conn:  # the settings row as an annotune before task options wrote it
        project.db.execute("UPDATE project SET value = ? WHERE key = 'settings'",
                           [json.dumps(OLD_MULTI_LABEL)])
    project.close()
    with Project.open(path) as reopened:
        settings = reopened.settings
    assert settings.option("multi_label") is True
    assert settings.option("thresholds") == (0.2, 0.9, 0.5, 0.35, 0.6)
    assert settings.max_length == 64 and settings.stride == 16
    assert "n_best" not in settings.options  # another task's key is dropped, not carried on
    examples = [{"text": "Jose\u0301 ate 🍕\r\nwith 👨‍👩‍👧"}, {"text": "مطعم 家族"}]
    features = task.encode(tokenizer, examples, None, settings)
    outputs = _logits(len(features), len(LABELS))
    new = TaskSettings(labels=LABELS, max_length=64, stride=16, multi_label=True,
                       thresholds=(0.2, 0.9, 0.5, 0.35, 0.6))
    assert task.decode(examples, features, outputs, settings) == task.decode(
        examples, features, outputs, new)
    assert all("labels" in prediction for prediction in task.decode(
        examples, features, outputs, settings))


def test_an_old_question_answering_bundle_manifest_decodes_as_before(tokenizer):
    """The Predictor reads a manifest's settings with task.settings_from_dict."""
    task = registry().task("question-answering")
    manifest = {"task": task.name, "settings": OLD_QA}
    settings = task.settings_from_dict(manifest["settings"])
    assert settings.option("allow_unanswerable") is True
    assert (settings.option("n_best"), settings.option("max_answer_length")) == (2, 3)
    assert "multi_label" not in settings.options
    examples = [{"context": "José a mangé une 🍕 à Paris.\r\nمطعم", "question": "Où ?"}]
    features = task.encode(tokenizer, examples, None, settings)
    rng = np.random.default_rng(5)
    outputs = [{"start_logits": rng.normal(size=len(f)).astype(np.float32),
                "end_logits": rng.normal(size=len(f)).astype(np.float32)} for f in features]
    new = TaskSettings(max_length=384, stride=128, allow_unanswerable=True,
                       max_answer_length=3, n_best=2)
    assert task.decode(examples, features, outputs, settings) == task.decode(
        examples, features, outputs, new)
    default = task.default_settings()  # n_best 20, answers up to 30 tokens, no "no answer"
    assert task.decode(examples, features, outputs, settings) != task.decode(
        examples, features, outputs, default)



def test_an_old_multi_label_bundle_predicts_as_before(tmp_path, tiny_base_model):
    """A run record and a bundle manifest of the older shape: the Predictor decides alike."""
    import shutil

    import transformers

    from annotune.core.export import export_run
    from annotune.core.inference import Predictor

    task = registry().task("text-classification")
    run_dir = tmp_path / "run"
    new = task.settings_from_dict(OLD_MULTI_LABEL)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_base_model, **task.model_kwargs(new))
    model.save_pretrained(run_dir / "model")
    transformers.AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(run_dir / "model")
    texts = ["Jose\u0301 ate 🍕", "家族 👨‍👩‍👧\r\nמסעדה", "مطعم"]
    run = {"task": task.name, "settings": OLD_MULTI_LABEL, "config": {}, "metrics": {},
           "base_model": "tiny", "device": "cpu", "samples": [{"text": t} for t in texts]}
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    bundle = export_run(run_dir, tmp_path / "bundle").bundle_dir
    current = Predictor(bundle).predict_texts(texts)
    assert all("labels" in prediction for prediction in current)
    old_bundle = tmp_path / "old-bundle"
    shutil.copytree(bundle, old_bundle)
    manifest = json.loads((old_bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["settings"] = OLD_MULTI_LABEL
    (old_bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    predictor = Predictor(old_bundle)
    assert predictor.settings.option("thresholds") == (0.2, 0.9, 0.5, 0.35, 0.6)
    assert predictor.predict_texts(texts) == current


@pytest.mark.parametrize(("task_name", "stored", "option"), [
    ("text-classification", {"multi_label": "false"}, "multi_label"),
    ("text-classification", {"multi_label": True, "thresholds": ["high"]}, "thresholds"),
    ("question-answering", {"options": {"n_best": "20"}}, "n_best"),
    ("question-answering", {"allow_unanswerable": 1}, "allow_unanswerable"),
])
def test_a_stored_option_of_the_wrong_kind_is_refused_where_the_file_is_read(
        tmp_path, task_name, stored, option):
    task = registry().task(task_name)
    labels = () if task_name == "question-answering" else LABELS
    path = tmp_path / "hand edited ✍️.annotune"
    Project.create(path, task=task.name, settings=TaskSettings(labels=labels)).close()
    project = Project.open(path)
    with project.db.conn:  # settings edited by hand, as a user might
        project.db.execute("UPDATE project SET value = ? WHERE key = 'settings'",
                           [json.dumps({"labels": list(labels), **stored})])
    project.close()
    with pytest.raises(AnnotuneError, match=option) as refused:
        Project.open(path).close()
    assert str(path) in str(refused.value)
    with pytest.raises(AnnotuneError, match=option) as refused:  # a bundle's manifest too
        task.settings_from_dict({"labels": list(labels), **stored}, where="bundle/manifest.json")
    assert str(refused.value).startswith("bundle/manifest.json: ")
