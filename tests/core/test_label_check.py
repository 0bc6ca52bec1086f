"""The label check: folds, out-of-fold ranking, stored checks and the check-labels command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from annotune.core import label_check
from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.plugins import registry
from annotune.core.store import Project
from annotune.core.tasks import LabelIssue, TaskSettings
from annotune.core.training.config import TrainConfig

# texts people write: emoji, a ZWJ family, CJK, Arabic, a combining accent, CRLF
WORDS = {"pos": ["good", "🍕", "美味しい", "رائع", "Jose\u0301 loved it"],
         "neg": ["bad", "👨\u200d👩\u200d👧 left", "まずい", "سيء", "awful\r\nreally"]}


# -- folds -------------------------------------------------------------------------------------

def test_every_example_is_held_out_exactly_once_stratified():
    keys = ["a"] * 50 + ["b"] * 30 + ["c"] * 7
    folds = label_check.assign_folds(keys, 5, seed=1)
    assert len(folds) == len(keys) and set(folds) == set(range(5))
    sizes = Counter(folds)
    assert max(sizes.values()) - min(sizes.values()) <= 1
    for key, count in Counter(keys).items():  # each label spread evenly over the folds
        per_fold = Counter(f for f, k in zip(folds, keys, strict=True) if k == key)
        assert max(per_fold.values()) - min(per_fold.get(f, 0) for f in range(5)) <= 1
        assert sum(per_fold.values()) == count
    assert folds == label_check.assign_folds(keys, 5, seed=1)  # reproducible


def test_groups_stay_in_one_fold():
    groups = [f"context {i // 4}" for i in range(40)]  # ten contexts of four questions
    folds = label_check.assign_folds([""] * 40, 4, seed=3, groups=groups)
    for group in set(groups):
        assert len({f for f, g in zip(folds, groups, strict=True) if g == group}) == 1
    assert set(folds) == set(range(4))


@pytest.mark.parametrize(("k", "n", "words"), [(1, 10, "at least 2 folds"),
                                               (5, 9, "at least 10 labeled examples")])
def test_impossible_fold_counts_say_what_to_do(k, n, words):
    with pytest.raises(AnnotuneError, match=words) as caught:
        label_check.assign_folds(["x"] * n, k)
    assert caught.value.hint


# -- out-of-fold ranking -----------------------------------------------------------------------

def _noisy_items(n=60, every=7):
    """Texts whose words say their label, with every ``every``-th label flipped."""
    items, flipped = [], set()
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        given = label
        if i % every == 3:
            given = "neg" if label == "pos" else "pos"
            flipped.add(100 + i)
        text = f"{WORDS[label][i % 5]} #{i}"
        items.append((100 + i, {"text": text}, {"label": given}))
    return items, flipped


def test_planted_flips_rank_first_and_no_model_sees_what_it_checks(monkeypatch, tmp_path):
    """A stand-in model that learns word → label votes from its training folds only."""
    task = registry().task("text-classification")
    settings = TaskSettings(labels=("pos", "neg"))
    items, flipped = _noisy_items()
    trained_on: list[set[str]] = []

    class Result:
        status, settings = "finished", None

        def __init__(self, out_dir):
            self.artifact_dir = out_dir

    def fake_train(task, settings, config, train_items, val, out_dir, emit, should_stop,
                   progress_interval=0.5):
        votes: dict[str, Counter] = {}
        for fields, annotation in train_items:
            votes.setdefault(fields["text"].split(" #")[0], Counter())[annotation["label"]] += 1
        trained_on.append({fields["text"] for fields, _ in train_items})
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "votes.json").write_text(json.dumps(votes, ensure_ascii=False))
        return Result(Path(out_dir))

    def fake_score(task, settings, config, model_dir, fields, annotations, should_stop=None):
        votes = json.loads((model_dir / "votes.json").read_text())
        assert not {f["text"] for f in fields} & trained_on[-1]  # out of fold
        issues = []
        for f, annotation in zip(fields, annotations, strict=True):
            counts = votes[f["text"].split(" #")[0]]
            p_given = counts.get(annotation["label"], 0) / sum(counts.values())
            issues.append(LabelIssue(1 - p_given))
        return issues

    import annotune.core.training.loop as loop

    monkeypatch.setattr(loop, "train", fake_train)
    monkeypatch.setattr(label_check, "score_held_out", fake_score)
    events = []
    ranked = label_check.find_label_issues(task, settings, TrainConfig(), items, 3,
                                           events.append, work_dir=tmp_path)
    assert sorted(r.example_id for r in ranked) == [i for i, _, _ in items]  # each once
    assert {r.example_id for r in ranked[:len(flipped)]} == flipped
    assert [e["fold"] for e in events if e["event"] == "fold"] == [1, 2, 3]
    scores = [r.issue.score for r in ranked]
    assert scores == sorted(scores, reverse=True)


def test_a_real_check_stores_ranked_issues_with_emoji_cjk_rtl(tmp_path, tiny_base_model):
    """Two folds of the tiny BERT end to end: every accepted annotation gets one issue row."""
    from annotune.core.label_check_job import run_check_inline

    items, _ = _noisy_items(n=20, every=7)
    project = Project.create(tmp_path / "p.annotune", "text-classification",
                             TaskSettings(labels=("pos", "neg")))
    project.add_examples([ImportRecord(fields, annotation) for _, fields, annotation in items])
    config = TrainConfig(base_model=str(tiny_base_model), epochs=1, device="cpu",
                         precision="fp32", batch_size=8)
    events = []
    check_id = run_check_inline(project, config, 2, events.append)
    issues = project.label_issues(check_id)
    assert len(issues) == 20 and [e["event"] for e in events][-1] == "finished"
    assert [i["score"] for i in issues] == sorted((i["score"] for i in issues), reverse=True)
    texts = {project.example(i["example_id"]).fields["text"] for i in issues}
    assert "Jose\u0301 loved it #4" in texts and "awful\r\nreally #9" in texts
    for issue in issues:
        assert issue["state"] == "open" and issue["given"] == issue["current"]
        assert (issue["suggestion"] is None) == (issue["score"] < 0.5)
    assert project.label_checks()[0]["status"] == "finished"
    project.close()


# -- the command -------------------------------------------------------------------------------

def test_check_labels_command_runs_the_check_in_a_child(tmp_path, tiny_base_model):
    items, _ = _noisy_items(n=16, every=5)
    path = tmp_path / "cli.annotune"
    with Project.create(path, "text-classification",
                        TaskSettings(labels=("pos", "neg"))) as project:
        project.add_examples([ImportRecord(f, a) for _, f, a in items])
    done = subprocess.run([sys.executable, "-m", "annotune.core.cli", "check-labels", str(path),
                           "--folds", "2", "--epochs", "1", "--device", "cpu",
                           "--base-model", str(tiny_base_model), "--top", "5"],
                          capture_output=True, text=True, encoding="utf-8", timeout=600)
    assert done.returncode == 0, done.stderr
    assert "fold 2/2" in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("label check 1: ") and "of 16 annotations" in lines[0]
    assert lines[1].split() == ["example", "score", "given", "suggested"]
    assert len(lines) == 2 + 5
    with Project.open(path) as project:
        assert len(project.label_issues()) == 16


def test_check_labels_refuses_a_project_without_labels(tmp_path):
    path = tmp_path / "empty.annotune"
    with Project.create(path, "text-classification", TaskSettings(labels=("a", "b"))):
        pass
    done = subprocess.run([sys.executable, "-m", "annotune.core.cli", "check-labels", str(path),
                           "--folds", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "no accepted annotations to check" in done.stderr
    with Project.open(path) as project:  # nothing half-written
        assert project.label_issues() == []


# -- the cheap variant: frozen encoder, a head per fold ----------------------------------------

def test_frozen_encoder_check_scores_every_example_once(tiny_base_model):
    task = registry().task("text-classification")
    items, _ = _noisy_items(n=20, every=7)
    config = TrainConfig(base_model=str(tiny_base_model), freeze_encoder=True, device="cpu")
    events = []
    ranked = label_check.find_label_issues(task, TaskSettings(labels=("pos", "neg")), config,
                                           items, 2, events.append)
    assert sorted(r.example_id for r in ranked) == [i for i, _, _ in items]
    assert all(0.0 <= r.issue.score <= 1.0 for r in ranked)
    assert [e["fold"] for e in events if e["event"] == "fold"] == [1, 2]
    assert any(e["event"] == "progress" for e in events)


def test_frozen_encoder_check_scores_ner_spans(tiny_base_model):
    task = registry().task("token-classification")
    settings = TaskSettings(labels=("PER", "LOC"))
    texts = [f"Jose\u0301 flew to 東京 with 🍕 number {i}" for i in range(8)]
    items = [(i + 1, {"text": t}, {"spans": [{"start": 0, "end": 5, "label": "PER"},
                                             {"start": 14, "end": 16, "label": "LOC"}]})
             for i, t in enumerate(texts)]
    config = TrainConfig(base_model=str(tiny_base_model), freeze_encoder=True, device="cpu")
    ranked = label_check.find_label_issues(task, settings, config, items, 2)
    assert sorted(r.example_id for r in ranked) == list(range(1, 9))
    for r in ranked:
        if r.issue.suggestion is not None:
            task.validate(r.issue.suggestion, {"text": texts[r.example_id - 1]}, settings)


def test_frozen_encoder_check_refuses_qa_with_a_way_out(tiny_base_model):
    task = registry().task("question-answering")
    items = [(i, {"context": f"Paris is nice {i}", "question": "Where?"},
              {"answers": [{"start": 0, "text": "Paris"}]}) for i in range(6)]
    config = TrainConfig(base_model=str(tiny_base_model), freeze_encoder=True, device="cpu")
    with pytest.raises(AnnotuneError, match="cannot score Extractive") as caught:
        label_check.find_label_issues(task, task.default_settings(), config, items, 2)
    assert "without --freeze-encoder" in caught.value.hint


def test_frozen_classification_fits_a_head_per_encoder_layer(monkeypatch, tiny_base_model):
    from transformers import AutoConfig

    from annotune.core import label_check_heads

    fitted = []
    fit = label_check_heads._fit_head

    def counting(task, settings, states, targets, seed):
        fitted.append(np.asarray(states[0]).shape)
        return fit(task, settings, states, targets, seed)

    monkeypatch.setattr(label_check_heads, "_fit_head", counting)
    layers = AutoConfig.from_pretrained(tiny_base_model).num_hidden_layers
    items, _ = _noisy_items(n=12, every=5)
    config = TrainConfig(base_model=str(tiny_base_model), freeze_encoder=True, device="cpu")
    label_check.find_label_issues(registry().task("text-classification"),
                                  TaskSettings(labels=("pos", "neg")), config, items, 2)
    assert len(fitted) == 2 * layers  # each fold: one head per layer, each on one layer's state
    assert len({shape for shape in fitted}) == 1 and len(fitted[0]) == 1


@pytest.mark.parametrize("multi", [False, True])
def test_layer_heads_average_their_probabilities(multi):
    import torch

    from annotune.core.label_check_heads import _AveragedHeads

    class Fixed(torch.nn.Module):  # stands in for a fitted head: the same logits always
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, state):
            return self.logits

    first, second = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 1.0, 0.0])
    logits = _AveragedHeads([Fixed(first), Fixed(second)], multi)(torch.zeros(2, 4))
    squash = torch.sigmoid if multi else (lambda t: torch.softmax(t, -1))
    expected = (squash(first) + squash(second)) / 2
    assert torch.allclose(squash(logits), expected, atol=1e-6)
