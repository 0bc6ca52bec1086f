"""Adding a label to a project that already has labeled examples keeps every one of them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

TEXTS = ["I 🍕🍕 love it", "東京は遠い", "Jose\u0301 was late\r\nagain", "ذهب أحمد إلى البيت"]


def _project(path, task="text-classification", labels=("neg", "pos"), **settings):
    project = Project.create(path, task=task, settings=TaskSettings(labels=labels, **settings))
    key = "context" if task == "question-answering" else "text"
    rows = [{key: text, **({"question": "Who?"} if key == "context" else {})} for text in TEXTS]
    project.add_examples([ImportRecord(fields=row, line=i + 1) for i, row in enumerate(rows)],
                         source="test")
    return project


def test_a_new_label_comes_after_the_others_and_keeps_every_saved_label(tmp_path):
    path = tmp_path / "reviews.annotune"
    with _project(path) as project:
        project.save_annotation(1, {"label": "pos"})
        project.save_annotation(2, {"label": "neg"})
        assert project.add_labels(["mixed"]) == ("neg", "pos", "mixed")
        project.save_annotation(3, {"label": "mixed"})
    with Project.open(path) as project:  # stored, not only in memory
        assert project.settings.labels == ("neg", "pos", "mixed")
        assert [project.annotation(i).payload["label"] for i in (1, 2, 3)] == \
            ["pos", "neg", "mixed"]


def test_a_label_another_program_added_meanwhile_is_kept(tmp_path):
    path = tmp_path / "reviews.annotune"
    with _project(path) as first, Project.open(path) as second:
        first.add_labels(["mixed"])
        assert second.add_labels(["sarcastic"]) == ("neg", "pos", "mixed", "sarcastic")
    with Project.open(path) as project:
        assert project.settings.labels == ("neg", "pos", "mixed", "sarcastic")


@pytest.mark.parametrize(("names", "message"), [
    (["pos"], "already has the label 'pos'"),
    (["  "], "needs a name"),
    ([], "needs a name"),
    (["new", "new"], "duplicate labels"),
])
def test_a_bad_new_label_is_refused_and_nothing_changes(tmp_path, names, message):
    path = tmp_path / "reviews.annotune"
    with _project(path) as project:
        with pytest.raises(AnnotuneError, match=message):
            project.add_labels(names)
        assert project.settings.labels == ("neg", "pos")
    with Project.open(path) as project:
        assert project.settings.labels == ("neg", "pos")


def test_entity_types_follow_the_ner_rules_and_qa_has_no_labels(tmp_path):
    with _project(tmp_path / "ner.annotune", "token-classification", ("PER",)) as project:
        with pytest.raises(AnnotuneError, match="looks like a tag"):
            project.add_labels(["B-LOC"])
        assert project.add_labels(["LOC", "東京ORG"]) == ("PER", "LOC", "東京ORG")
    with _project(tmp_path / "qa.annotune", "question-answering", ()) as project:
        with pytest.raises(AnnotuneError, match="no labels"):
            project.add_labels(["ANSWER"])


def test_tuned_multi_label_thresholds_keep_their_labels(tmp_path):
    with _project(tmp_path / "tags.annotune", labels=("a", "b"), multi_label=True,
                  thresholds=(0.3, 0.7)) as project:
        project.add_labels(["c"])
        assert project.settings.option("thresholds") == (0.3, 0.7, 0.5)
        assert project.task.thresholds(project.settings)[2] == 0.5


def test_the_labels_command_lists_counts_and_adds(tmp_path):
    path = tmp_path / "reviews.annotune"
    with _project(path) as project:
        project.save_annotation(1, {"label": "pos"})

    def annotune(*args):
        return subprocess.run([sys.executable, "-m", "annotune.core.cli", *map(str, args)],
                              capture_output=True, text=True, timeout=120)

    done = annotune("labels", path, "--add", "mixed,sarcastic")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"added mixed, sarcastic to {path}"
    assert [line.split()[:3] for line in lines[1:]] == [
        ["1", "neg", "0"], ["2", "pos", "1"], ["3", "mixed", "0"], ["4", "sarcastic", "0"]]
    refused = annotune("labels", path, "--add", "pos")
    assert refused.returncode != 0 and "already has the label 'pos'" in refused.stderr
    assert str(path) in refused.stderr and "its labels: neg, pos" in refused.stderr
    stats = json.loads(annotune("stats", path).stdout)
    assert list(stats["labels"]) == ["neg", "pos", "mixed", "sarcastic"]


def test_settings_that_remove_or_move_a_label_are_refused_and_nothing_changes(tmp_path):
    path = tmp_path / "reviews.annotune"
    with _project(path, labels=("neg", "pos", "🍕")) as project:
        project.save_annotation(1, {"label": "🍕"})
        project.save_annotation(2, {"label": "neg"})
        with pytest.raises(AnnotuneError, match="'🍕' \\(1 accepted annotation use it\\)"):
            project.set_settings(TaskSettings(labels=("neg", "pos")))
        # unused, but another program may hold the labels and save with "pos" next
        with pytest.raises(AnnotuneError, match="lack the label 'pos'"):
            project.set_settings(TaskSettings(labels=("neg", "🍕")))
        with pytest.raises(AnnotuneError, match="another order"):
            project.set_settings(TaskSettings(labels=("pos", "neg", "🍕")))
        project.set_settings(TaskSettings(labels=("neg", "pos", "🍕", "mixed")))
    with Project.open(path) as project:
        assert project.settings.labels == ("neg", "pos", "🍕", "mixed")
        assert project.annotation(1).payload == {"label": "🍕"}


def test_stale_settings_do_not_drop_a_label_another_program_added_and_used(tmp_path):
    path = tmp_path / "reviews.annotune"
    with _project(path, labels=("a", "b"), options={"multi_label": True}) as desktop:
        with Project.open(path) as other:
            other.add_labels(["Jose\u0301"])
            other.save_annotation(3, {"labels": ["a", "Jose\u0301"]})
        stale = desktop.settings.with_(options={"multi_label": True, "thresholds": [0.4, 0.6]})
        with pytest.raises(AnnotuneError, match="another program"):
            desktop.set_settings(stale)
    with Project.open(path) as project:
        assert project.settings.labels == ("a", "b", "Jose\u0301")
        assert project.annotation(3).payload == {"labels": ["a", "Jose\u0301"]}


def test_settings_the_task_refuses_are_not_stored(tmp_path):
    path = tmp_path / "reviews.annotune"
    with _project(path) as project:
        with pytest.raises(AnnotuneError, match="duplicate labels"):
            project.set_settings(TaskSettings(labels=("neg", "neg")))
    with Project.open(path) as project:
        assert project.settings.labels == ("neg", "pos")


def test_stored_settings_read_the_labels_another_program_added_since_opening(tmp_path):
    project = _project(tmp_path / "p.annotune")
    with Project.open(project.path) as other:
        other.add_labels(["مراجعة"])
    assert project.settings.labels == ("neg", "pos")  # as read on opening
    assert project.stored_settings().labels == ("neg", "pos", "مراجعة")
    project.close()
