"""The learning curve: nested stratified subsets, paired uncertainty, the verdict, the job."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from annotune.core import learning_curve
from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.plugins import registry
from annotune.core.store import Project
from annotune.core.store.runs import TrainingBusyError
from annotune.core.tasks import TaskSettings
from annotune.core.training import learning_curve_job

# texts as people write them: emoji, a ZWJ family, CJK, a combining accent, RTL, CRLF
TEXTS = ("great pizza 🍕", "👨‍👩‍👧 loved it", "東京の映画はよかった", "Jose\u0301 says awful",
         "فيلم رائع", "סרט גרוע\r\nממש", "plain words")
CLASSIFICATION = registry().task("text-classification")
SETTINGS = TaskSettings(labels=("neg", "pos", "meh"))


def _items(counts: dict[str, int]) -> list[tuple[dict, dict]]:
    items = []
    for label, count in counts.items():
        items += [({"text": f"{TEXTS[i % len(TEXTS)]} {label} {i}"}, {"label": label})
                  for i in range(count)]
    random.Random(3).shuffle(items)
    return items


# -- subsets ------------------------------------------------------------------------------------
def test_subsets_are_nested_stratified_and_repeatable():
    items = _items({"pos": 60, "neg": 30, "meh": 10})
    subsets = learning_curve.nested_subsets(items, CLASSIFICATION, seed=7)
    assert [len(s) for s in subsets] == [25, 50, 75, 100]
    for smaller, larger in zip(subsets, subsets[1:], strict=False):
        assert set(smaller) < set(larger)
    for fraction, subset in zip(learning_curve.FRACTIONS, subsets, strict=True):
        counts = {label: sum(items[i][1]["label"] == label for i in subset)
                  for label in ("pos", "neg", "meh")}
        assert counts == {"pos": round(60 * fraction), "neg": round(30 * fraction),
                          "meh": round(10 * fraction)}
    assert learning_curve.nested_subsets(items, CLASSIFICATION, seed=7) == subsets
    assert learning_curve.nested_subsets(items, CLASSIFICATION, seed=8) != subsets


def test_every_label_appears_in_the_smallest_subset():
    items = _items({"pos": 97, "neg": 2, "meh": 1})
    smallest = learning_curve.nested_subsets(items, CLASSIFICATION, seed=1)[0]
    assert {items[i][1]["label"] for i in smallest} == {"pos", "neg", "meh"}


def test_fractions_must_rise_within_zero_and_one():
    items = _items({"pos": 10, "neg": 10})
    for bad in ((0.5, 0.25), (0.0, 1.0), (0.5, 1.5), ()):
        with pytest.raises(AnnotuneError, match="fractions"):
            learning_curve.nested_subsets(items, CLASSIFICATION, bad)


def test_too_few_examples_are_refused_with_what_to_do():
    with pytest.raises(AnnotuneError) as caught:
        learning_curve.check_enough(12, where="reviews.annotune")
    assert "at least 20" in str(caught.value) and "has 12" in str(caught.value)
    assert caught.value.where == "reviews.annotune" and "label more" in caught.value.hint


# -- uncertainty and verdict --------------------------------------------------------------------
def _predictions(gold: list[dict], correct: np.ndarray) -> list[dict]:
    flip = {"pos": "neg", "neg": "pos"}
    return [{"label": a["label"] if ok else flip[a["label"]]} for a, ok in zip(gold, correct,
                                                                              strict=True)]


def _curve(n: int, accuracies: list[float], seed: int = 0) -> dict:
    """Score points whose correct examples are nested: a later point fixes earlier errors."""
    binary = TaskSettings(labels=("neg", "pos"))
    rng = np.random.default_rng(seed)
    gold = [{"label": "pos" if i % 2 else "neg"} for i in range(n)]
    difficulty = rng.random(n)
    predictions = [_predictions(gold, difficulty < accuracy) for accuracy in accuracies]
    points = [{"fraction": f, "labels": 10 * (i + 1),
               "score": CLASSIFICATION.metrics(p, gold, binary)["f1"]}
              for i, (f, p) in enumerate(zip((0.25, 0.5, 0.75, 1.0), predictions, strict=True))]
    resampled = learning_curve.bootstrap(CLASSIFICATION, binary, predictions, gold, samples=100)
    return learning_curve.summarize(CLASSIFICATION, points, resampled, n)


def test_a_clear_gain_on_many_validation_examples_says_labeling_more_helps():
    curve = _curve(800, [0.50, 0.60, 0.70, 0.80])
    said = learning_curve.verdict(curve, "Macro F1")
    assert said["kind"] == "likely"
    gain = (curve["points"][3]["score"] - curve["points"][2]["score"]) * 100
    assert 8 < gain < 12
    assert said["sentence"] == (f"Labeling more is likely to help: +{gain:.1f} points of Macro "
                                "F1 from the last 25 % of the labels.")
    # paired: the gain's interval is much tighter than the two points' intervals
    first, last = curve["points"][2], curve["points"][3]
    assert first["low"] < first["score"] < first["high"]
    assert curve["gain"]["high"] - curve["gain"]["low"] < (last["high"] - last["low"])
    assert 0 < curve["gain"]["low"] < gain / 100 < curve["gain"]["high"]
    assert "95 % interval" in said["detail"] and "800 validation examples" in said["detail"]


def test_a_flat_end_says_labeling_more_is_unlikely_to_help():
    said = learning_curve.verdict(_curve(800, [0.70, 0.78, 0.801, 0.802]), "F1")
    assert said["kind"] == "unlikely"
    assert said["sentence"].startswith("Labeling more is unlikely to help: +0.")
    assert " points of F1 from the last 25 % of the labels." in said["sentence"]
    assert said["high_points"] < learning_curve.WORTHWHILE_POINTS


def test_a_small_validation_set_says_it_cannot_tell():
    said = learning_curve.verdict(_curve(40, [0.60, 0.65, 0.70, 0.725]), "F1")
    assert said["kind"] == "unclear"
    assert said["sentence"].startswith("The validation set is too small to tell whether "
                                       "labeling more helps: +")
    assert said["low_points"] <= 0 < said["high_points"]


def test_points_are_percentage_points_whatever_the_metric_scale():
    curve = {"metric_scale": 100.0, "interval": 95, "validation_examples": 900,
             "bootstrap_samples": 300, "points": [],
             "gain": {"from_fraction": 0.75, "to_fraction": 1.0, "value": 2.5, "low": 1.0,
                      "high": 4.0}}
    said = learning_curve.verdict(curve, "F1")  # SQuAD F1 is already in percent
    assert said["sentence"] == ("Labeling more is likely to help: +2.5 points of F1 from the "
                                "last 25 % of the labels.")
    curve["gain"].update(value=-0.31, low=-0.9, high=0.4)
    assert learning_curve.verdict(curve)["sentence"].startswith(
        "Labeling more is unlikely to help: −0.3 points from the last 25 %")


# -- the stored curve ---------------------------------------------------------------------------
def test_a_curve_is_stored_whole_and_read_back_or_not_at_all(tmp_path):
    assert learning_curve.read_curve(tmp_path, 3) is None
    curve = {"points": [{"fraction": 1.0, "labels": 4, "score": 0.5}], "note": "Jose\u0301 🍕"}
    path = learning_curve.write_curve(tmp_path, 3, curve)
    assert path == tmp_path / "3" / "learning_curve.json"
    assert learning_curve.read_curve(tmp_path, 3) == curve
    assert [p.name for p in path.parent.iterdir()] == ["learning_curve.json"]
    path.write_text("{ half a fi", encoding="utf-8")
    assert learning_curve.read_curve(tmp_path, 3) is None


# -- computing it -------------------------------------------------------------------------------
POSITIVE, NEGATIVE = ("good", "great", "🍕 yum"), ("bad", "awful", "meh 👎")


def _records(n: int, split: str | None = None, offset: int = 0) -> list[ImportRecord]:
    rng = random.Random(offset)
    out = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = [rng.choice(TEXTS), rng.choice(POSITIVE if label == "pos" else NEGATIVE),
                 f"n{offset + i}"]
        out.append(ImportRecord(fields={"text": " ".join(words)}, annotation={"label": label},
                                split=split, line=i + 1))
    return out


CONFIG = {"epochs": 2, "learning_rate": 5e-3, "batch_size": 8, "device": "cpu",
          "early_stopping_patience": 0, "seed": 5}


@pytest.fixture
def project(tmp_path, tiny_base_model, one_cpu_thread):
    path = tmp_path / "reviews.annotune"
    project = Project.create(path, task="text-classification",
                             settings=TaskSettings(labels=("neg", "pos"), max_length=32),
                             base_model=str(tiny_base_model))
    project.add_examples(_records(48), source="train.csv")
    project.add_examples(_records(16, split="validation", offset=100), source="dev.csv")
    run_id = project.create_run(CONFIG, "cpu")
    project.finish_run(run_id, "finished", metrics={"f1": 0.5})
    yield project
    project.close()


def test_the_curve_retrains_the_run_on_growing_subsets_scored_on_one_validation_set(project):
    events = []
    curve = learning_curve_job.compute(project, None, events.append, samples=50)
    assert [p["labels"] for p in curve["points"]] == [12, 24, 36, 48]
    assert curve["validation_examples"] == 16 and curve["train_examples"] == 48
    assert curve["source_run"] == 1 and curve["config"]["learning_rate"] == 5e-3
    for point in curve["points"]:
        assert 0 <= point["low"] <= point["score"] <= point["high"] <= 1
    assert learning_curve.read_curve(project.runs_dir, 1) == json.loads(
        json.dumps(curve))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("point_started") == kinds.count("point") == 4
    done = [e["done"] for e in events if e["event"] == "progress"]
    assert done == sorted(done) and done[-1] == 1.0
    # nothing else is left behind: no run rows, no checkpoints
    assert [r["id"] for r in project.runs()] == [1]
    assert sorted(p.name for p in (project.runs_dir / "1").iterdir()) == [
        "learning_curve.json"]


def test_without_a_validation_split_the_runs_own_split_is_used(tmp_path, tiny_base_model,
                                                               one_cpu_thread):
    with Project.create(tmp_path / "p.annotune", task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"), max_length=32),
                        base_model=str(tiny_base_model)) as project:
        project.add_examples(_records(40), source="train.csv")
        run_id = project.create_run({**CONFIG, "validation_fraction": 0.2}, "cpu")
        project.finish_run(run_id, "finished")
        curve = learning_curve_job.compute(project, run_id, samples=20, fractions=(0.5, 1.0))
    assert curve["validation_examples"] == 8
    assert [p["labels"] for p in curve["points"]] == [16, 32]


def test_a_stop_request_stores_nothing_and_leaves_nothing(project):
    asked = []

    def stop_after_the_first_point() -> bool:
        asked.append(1)
        return bool(points)

    points: list[dict] = []
    with pytest.raises(learning_curve_job.CurveCancelled):
        learning_curve_job.compute(project, None, lambda e: e["event"] == "point"
                                   and points.append(e), stop_after_the_first_point)
    assert len(points) == 1 and asked
    assert learning_curve.read_curve(project.runs_dir, 1) is None
    assert not (project.runs_dir / "1" / learning_curve_job.WORK_FOLDER).exists()


def test_a_running_training_refuses_the_curve_and_unfinished_runs_are_refused(project):
    with project.lock_training():
        with pytest.raises(TrainingBusyError):
            learning_curve_job.compute(project, 1)
    failed = project.create_run(CONFIG, "cpu")
    project.finish_run(failed, "failed", error="out of memory")
    with pytest.raises(AnnotuneError, match=f"run {failed} is failed, not finished"):
        learning_curve_job.compute(project, failed)


def test_a_project_without_finished_runs_says_to_train_first(tmp_path):
    with Project.create(tmp_path / "p.annotune", task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as project:
        with pytest.raises(AnnotuneError) as caught:
            learning_curve_job.source_run(project, None)
    assert "no finished training run" in str(caught.value)
    assert "annotune train" in caught.value.hint


def test_the_command_runs_the_curve_in_a_child_and_prints_the_verdict(project, capsys,
                                                                      monkeypatch):
    from annotune.core import cli

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = str(project.path)
    assert cli.main(["learning-curve", path]) == cli.EXIT_OK
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0].split() == ["Labels", "Share", "F1", "95", "%", "interval"]
    assert [line.split()[0] for line in lines[1:5]] == ["12", "24", "36", "48"]
    assert "labeling more" in lines[5].lower() and "from the last 25 % of the labels" in lines[5]
    assert "validation examples resampled" in lines[6]
    assert "learning curve of run 1" in out.err
    assert Path(lines[-1].removeprefix("stored in ")) == learning_curve.curve_path(
        project.runs_dir, 1)
    assert cli.main(["learning-curve", path, "--json"]) == cli.EXIT_OK
    stored = json.loads(capsys.readouterr().out)
    assert stored["verdict"]["kind"] in ("likely", "unlikely", "unclear")
    assert len(stored["points"]) == 4
