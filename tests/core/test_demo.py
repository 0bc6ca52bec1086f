"""The README's main command, end to end with the real bundled model (minutes on a CPU)."""

import subprocess
import sys

import pytest

from annotune.core.demo_data import NEW_TEXTS, demo_rows


def test_demo_sample_is_balanced_and_new_texts_are_unseen():
    rows = demo_rows()
    labels = [row["label"] for row in rows]
    assert labels.count("positive") == labels.count("negative") > 50
    assert not set(NEW_TEXTS) & {row["text"] for row in rows}


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
