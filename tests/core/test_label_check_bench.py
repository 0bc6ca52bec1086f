"""The planted-error benchmark's saved probabilities and its offline comparison of rankings."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from annotune.core.label_check import RankedIssue
from annotune.core.tasks import LabelIssue

BENCH = Path(__file__).resolve().parents[2] / "bench" / "label_errors.py"
LABELS = ("neg", "pos")
# texts people write: emoji, a ZWJ family, CJK, Arabic, a combining accent, CRLF
TEXTS = ["🍕 again", "👨\u200d👩\u200d👧 left early", "美味しい", "رائع جدا", "Jose\u0301 loved it",
         "awful\r\nreally"]


@pytest.fixture(scope="module")
def bench():
    if not BENCH.is_file():
        pytest.skip("bench/label_errors.py is not in this checkout")
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec = importlib.util.spec_from_file_location("label_errors_bench", BENCH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH.parent))
    return module


def checked(scores: list[float], given: list[str]) -> list[RankedIssue]:
    """Build a check's result: example n has the given label and score (1 - p(given))."""
    return [RankedIssue(n, {"label": label}, LabelIssue(score), n % 2 + 1)
            for n, (score, label) in enumerate(zip(scores, given, strict=True))]


def save(bench, path: Path, scores: list[float], given: list[str], planted: set[int]) -> Path:
    noisy = [({"text": TEXTS[n % len(TEXTS)]}, {"label": label}) for n, label in enumerate(given)]
    bench.save_probabilities(path, checked(scores, given), LABELS, planted, noisy,
                             {"seed": 7, "data_dir": Path("/data")})
    return path


def test_saved_probabilities_keep_every_example_its_text_and_the_planting(bench, tmp_path):
    given = ["pos", "neg", "pos", "neg"]
    path = save(bench, tmp_path / "run.json", [0.9, 0.2, 0.25, 0.6], given, {0, 3})
    saved = json.loads(path.read_text(encoding="utf-8"))
    rows = saved["examples"]
    assert [row["id"] for row in rows] == [0, 1, 2, 3]
    assert [row["planted"] for row in rows] == [True, False, False, True]
    assert rows[0]["probabilities"] == pytest.approx({"pos": 0.1, "neg": 0.9})
    assert rows[1]["fields"]["text"] == TEXTS[1]  # the ZWJ family survives whole
    assert saved["settings"] == {"seed": 7, "data_dir": "/data"}


def test_combining_saved_runs_averages_their_probabilities(bench, tmp_path, capsys):
    # each run misses a different planted error; their average finds both on top
    given = ["pos", "neg", "pos", "neg", "pos", "neg"]
    first = save(bench, tmp_path / "a.json", [0.9, 0.1, 0.2, 0.3, 0.1, 0.6], given, {0, 1})
    second = save(bench, tmp_path / "b.json", [0.3, 0.9, 0.6, 0.1, 0.1, 0.1], given, {0, 1})
    labels, examples, matrices = bench.load_saved([first, second])
    assert labels == list(LABELS) and len(examples) == 6
    index = np.array([labels.index(label) for label in given])
    average = np.mean(matrices, axis=0)
    assert bench.ranking_by_self_confidence(average, index)[:2] == [0, 1]
    assert bench.combine([first, second]) == 0
    table = capsys.readouterr().out
    assert "average of all" in table and "per-class threshold" in table


def test_per_class_threshold_ranks_against_each_labels_mean(bench):
    # "pos" examples are all sure, so its 0.8 is far below its mean; "neg" ones all unsure
    matrix = np.array([[0.05, 0.95], [0.05, 0.95], [0.2, 0.8], [0.55, 0.45], [0.6, 0.4],
                       [0.65, 0.35]])
    given = np.array([1, 1, 1, 0, 0, 0])
    assert bench.ranking_by_self_confidence(matrix, given)[0] == 3
    assert bench.ranking_by_class_threshold(matrix, given)[0] == 2
    assert sorted(bench.ranking_by_class_threshold(matrix, given)) == list(range(6))


def test_combining_runs_of_different_plantings_is_refused_with_the_file(bench, tmp_path):
    given = ["pos", "neg", "pos", "neg"]
    first = save(bench, tmp_path / "a.json", [0.9, 0.1, 0.2, 0.3], given, {0})
    other = save(bench, tmp_path / "other.json", [0.9, 0.1, 0.2, 0.3], given, {1})
    with pytest.raises(SystemExit, match="other.json: not the same planted examples"):
        bench.load_saved([first, other])


def test_a_missing_or_foreign_file_is_refused_with_its_name(bench, tmp_path):
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(SystemExit, match="notes.json: not a file written by --save-prob"):
        bench.load_saved([foreign])
    with pytest.raises(SystemExit, match="absent.json: not a file written by --save-prob"):
        bench.load_saved([tmp_path / "absent.json"])
