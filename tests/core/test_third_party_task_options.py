"""A task installed by a third party declares its own option: the command line offers it, the
project stores it, and training, export and the Predictor hand it to the task."""

from __future__ import annotations

import json

import pytest

from annotune.core import cli, plugins
from annotune.core.hookspecs import hookimpl
from annotune.core.store import Project
from annotune.core.tasks import TaskOption
from annotune.plugins.text_classification import TextClassificationTask

# named like a flag of `init` itself: not offered, and the command line still works
BASE_MODEL = TaskOption("base_model", str, "", "a clash with init's --base-model")
CASING = TaskOption("casing", str, "keep", "how texts are cased before tokenizing",
                    title="Casing", choices=("keep", "lower"))


class CasedClassificationTask(TextClassificationTask):
    """Text classification that may lowercase texts first: an option of its own."""

    name = "cased-classification"
    title = "Cased classification"
    options = (*TextClassificationTask.options, CASING, BASE_MODEL)
    seen: list[str] = []  # the casing each encode call was given

    def encode(self, tokenizer, examples, annotations, settings):
        casing = settings.option(CASING)
        self.seen.append(casing)
        if casing == "lower":
            examples = [{**example, "text": example["text"].lower()} for example in examples]
        return super().encode(tokenizer, examples, annotations, settings)


class CasedPlugin:
    @hookimpl
    def register_tasks(self, register):
        register(CasedClassificationTask())


@pytest.fixture
def with_cased_task(monkeypatch):
    built = plugins.build_registry(extra_plugins=(CasedPlugin(),))
    monkeypatch.setattr(plugins, "registry", lambda: built)
    CasedClassificationTask.seen.clear()
    return built.task("cased-classification")


def test_the_command_line_offers_the_option_with_its_values_and_default(with_cased_task,
                                                                         capsys):
    with pytest.raises(SystemExit):
        cli.main(["init", "--help"])
    out, err = capsys.readouterr()
    text = " ".join(out.split())
    assert "--casing keep|lower" in text
    assert "how texts are cased before tokenizing; one of keep, lower (default: keep)" in text
    assert "[cased-classification]" in text
    assert "a clash with init's" not in text and "--base-model" in text
    assert "option base_model of cased-classification is not offered" in err


def test_a_bad_value_or_a_flag_of_another_task_is_refused(with_cased_task, tmp_path, capsys):
    path = tmp_path / "cased.annotune"
    code = cli.main(["init", str(path), "--task", "cased-classification", "--labels", "a,b",
                     "--casing", "upper"])
    error = capsys.readouterr().err
    assert code == cli.EXIT_ERROR and not path.exists()
    assert "casing cannot be 'upper'" in error and "one of keep, lower" in error
    code = cli.main(["init", str(path), "--task", "token-classification", "--labels", "PER",
                     "--casing", "lower"])
    assert code == cli.EXIT_ERROR and not path.exists()
    assert "takes no --casing" in capsys.readouterr().err


def test_the_option_reaches_the_task_in_training_export_and_prediction(
        with_cased_task, tmp_path, tiny_base_model, capsys):
    from annotune.core.export import export_run
    from annotune.core.inference import Predictor
    from annotune.core.training.config import TrainConfig
    from annotune.core.training.loop import train

    path = tmp_path / "cased 🍕.annotune"
    assert cli.main(["init", str(path), "--task", "cased-classification", "--labels",
                     "😀 good,مطعم bad", "--casing", "lower"]) == cli.EXIT_OK
    with Project.open(path) as project:
        settings = project.settings
    assert settings.option("casing") == "lower" and settings.option("multi_label") is False
    items = [({"text": f"Jose\u0301 loved the 🍕 {i}"}, {"label": "😀 good"}) for i in range(8)]
    items += [({"text": f"家族 👨‍👩‍👧 hated it {i}"}, {"label": "مطعم bad"}) for i in range(8)]
    config = TrainConfig(base_model=str(tiny_base_model), epochs=1, batch_size=8,
                         device="cpu", seed=7)
    result = train(with_cased_task, settings, config, items, None, tmp_path / "run")
    assert result.best_epoch is not None
    assert CasedClassificationTask.seen and set(CasedClassificationTask.seen) == {"lower"}
    run = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert run["settings"]["options"]["casing"] == "lower"
    bundle = export_run(tmp_path / "run", tmp_path / "bundle").bundle_dir
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["settings"]["options"]["casing"] == "lower"
    CasedClassificationTask.seen.clear()
    predictions = Predictor(bundle).predict_texts(["JOSE\u0301 LOVED THE 🍕", "مطعم"])
    assert len(predictions) == 2 and CasedClassificationTask.seen == ["lower"]
