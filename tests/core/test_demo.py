"""The README's main command, end to end with the real bundled model (a few minutes on a CPU)."""

import json
from dataclasses import replace

import pytest

from annotune.core.bundle_records import project_bundles
from annotune.core.demo import run_demo
from annotune.core.demo_data import NEW_TEXTS, demo_rows, unlabeled_texts
from annotune.core.store import Project


def test_demo_sample_is_balanced_and_new_texts_are_unseen():
    rows = demo_rows()
    labels = [row["label"] for row in rows]
    assert labels.count("positive") == labels.count("negative") > 50
    assert not set(NEW_TEXTS) & {row["text"] for row in rows}


def test_demo_leaves_new_unlabeled_reviews_to_label():
    labeled = {row["text"] for row in demo_rows()}
    texts = unlabeled_texts()
    assert len(texts) == len(set(texts)) >= 20
    assert not set(texts) & (labeled | set(NEW_TEXTS))
    assert all("\n" not in text for text in texts)  # imported one per line


# The README's demo trains 5 epochs; the test trains 2 in fp32 (no precision probe): the
# same path (project, training child, both exports, predictions, suggestions) at about 40 %
# of the training time, and the model already gets all four new sentences right.
TEST_EPOCHS = 2


@pytest.mark.slow
def test_demo_trains_exports_and_predicts_new_sentences(tmp_path, capsys):
    from annotune.core.cli import _run_training

    def shorter_training(project_path, config):
        return _run_training(project_path, replace(config, epochs=TEST_EPOCHS, precision="fp32"))

    folder = tmp_path / "demo"
    assert run_demo(folder, gui="no", train=shorter_training) == 0
    output = capsys.readouterr().out
    assert (folder / "bundle-fp32" / "model.onnx").is_file()
    assert (folder / "bundle-int8" / "model.onnx").is_file()
    predicted = {}
    for line in output.splitlines():
        for text in NEW_TEXTS:
            if line.strip().endswith(text):
                predicted[text] = line.split()[0]
    # the four new sentences alternate positive / negative: all four right by chance is 1 in 16
    assert [predicted[text] for text in NEW_TEXTS] == ["positive", "negative"] * 2
    record = json.loads(next((folder / "demo-runs").glob("*/run.json")).read_text())
    assert record["config"]["epochs"] == TEST_EPOCHS
    assert record["metrics"]["accuracy"] >= 0.75  # on 20 held-out reviews; chance is 0.5

    # the project a person lands on has work to do and the tools for it
    with Project.open(folder / "demo.annotune") as project:
        unlabeled = project.examples(status="unlabeled", limit=1000)
        assert len(unlabeled) == len(unlabeled_texts())
        assert project.count(status="accepted") == len(demo_rows())
        scores = [project.prediction(example.id).score for example in unlabeled]
        first = project.next_example(status="unlabeled", order="uncertainty")
        assert project.prediction(first.id).score == min(scores)  # a real uncertainty order
        assert min(scores) < max(scores)
        bundles = {found.path.name for found in project_bundles(project.runs_dir)}
    assert bundles == {"bundle-fp32", "bundle-int8"}  # listed in Try it
