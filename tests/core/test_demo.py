"""The README's main command, end to end with the real bundled model (minutes on a CPU)."""

import subprocess
import sys

import pytest

from annotune.core.bundle_records import project_bundles
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


@pytest.mark.slow
def test_demo_trains_exports_and_predicts_new_sentences(tmp_path):
    folder = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "annotune.core.cli", "demo", "--dir",
                             str(folder), "--gui", "no"], capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (folder / "bundle-fp32" / "model.onnx").is_file()
    assert (folder / "bundle-int8" / "model.onnx").is_file()
    predicted = {}
    for line in result.stdout.splitlines():
        for text in NEW_TEXTS:
            if line.strip().endswith(text):
                predicted[text] = line.split()[0]
    # the four new sentences alternate positive / negative
    assert [predicted[text] for text in NEW_TEXTS] == ["positive", "negative"] * 2

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
