"""Annotations: validation, skip, linear undo/redo, audit history, and durability after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from annotune.core import plugins
from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

LABELS = ("neg", "pos")

# The subprocess tests define the same fake task from this source, so parent and child agree.
FAKE_TASK_SOURCE = textwrap.dedent('''
    from annotune.core import plugins
    from annotune.core.errors import AnnotuneError
    from annotune.core.hookspecs import hookimpl
    from annotune.core.tasks import Task

    class FakeLabelTask(Task):
        name = "fake-annotation-labels"
        title = "Fake labels"
        annotation_kind = "label"
        fields = ("text",)
        auto_model = "AutoModelForSequenceClassification"
        main_metric = "accuracy"

        def validate(self, annotation, example, settings):
            if annotation.get("label") not in settings.labels:
                raise AnnotuneError(f"unknown label {annotation.get('label')!r}",
                                    hint="allowed labels: " + ", ".join(settings.labels))
            return {"label": annotation["label"]}

    class FakePlugin:
        @staticmethod
        @hookimpl
        def register_tasks(register):
            register(FakeLabelTask())
''')
namespace: dict[str, Any] = {}
exec(compile(FAKE_TASK_SOURCE, "fake_task", "exec"), namespace)
FakePlugin = namespace["FakePlugin"]
TASK_NAME = namespace["FakeLabelTask"].name


@pytest.fixture(scope="module")
def fake_registry() -> plugins.Registry:
    return plugins.build_registry(extra_plugins=(FakePlugin,))


@pytest.fixture(autouse=True)
def use_fake_registry(monkeypatch: pytest.MonkeyPatch, fake_registry: plugins.Registry) -> None:
    monkeypatch.setattr(plugins, "registry", lambda: fake_registry)


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "p.annotune", task=TASK_NAME,
                        settings=TaskSettings(labels=LABELS)) as opened:
        opened.add_examples([ImportRecord({"text": t}, line=i)
                             for i, t in enumerate(["one", "two", "three", "four"], 2)])
        yield opened


def payload(project: Project, example_id: int) -> Any:
    stored = project.annotation(example_id)
    return None if stored is None else (stored.status, stored.payload)


def test_save_validates_before_writing(project):
    stored = project.save_annotation(1, {"label": "pos"}, annotator="ana")
    assert (stored.example_id, stored.payload, stored.status, stored.annotator) == (
        1, {"label": "pos"}, "accepted", "ana")
    with pytest.raises(AnnotuneError, match="unknown label 'maybe'"):
        project.save_annotation(2, {"label": "maybe"})
    with pytest.raises(AnnotuneError, match="no example 9"):
        project.save_annotation(9, {"label": "pos"})
    with pytest.raises(AnnotuneError, match="unknown annotation status"):
        project.save_annotation(2, {"label": "pos"}, status="maybe")
    with pytest.raises(AnnotuneError, match="no example 9"):
        project.skip(9)
    assert payload(project, 2) is None
    assert [h["action"] for h in project.history()] == ["save"]


def test_skip_then_label(project):
    project.skip(3)
    assert payload(project, 3) == ("skipped", {})
    assert project.count(status="skipped") == 1
    project.save_annotation(3, {"label": "neg"})
    assert payload(project, 3) == ("accepted", {"label": "neg"})
    assert project.count(status="skipped") == 0


def test_undo_and_redo_walk_one_linear_history(project):
    assert project.undo() is None and project.redo() is None
    assert not project.can_undo()
    project.save_annotation(1, {"label": "pos"})
    project.save_annotation(2, {"label": "neg"})
    project.save_annotation(1, {"label": "neg"})
    project.skip(3)

    assert project.undo() == 3 and payload(project, 3) is None
    assert project.undo() == 1 and payload(project, 1) == ("accepted", {"label": "pos"})
    assert project.undo() == 2 and payload(project, 2) is None
    assert project.can_redo()
    assert project.redo() == 2 and payload(project, 2) == ("accepted", {"label": "neg"})
    assert project.redo() == 1 and payload(project, 1) == ("accepted", {"label": "neg"})

    # A new change after undo drops what is left to redo, as in an editor.
    project.save_annotation(4, {"label": "pos"})
    assert project.redo() is None and not project.can_redo()
    assert payload(project, 3) is None

    assert [project.undo() for _ in range(5)] == [4, 1, 2, 1, None]
    assert [payload(project, i) for i in (1, 2, 3, 4)] == [None] * 4
    assert project.redo() == 1 and payload(project, 1) == ("accepted", {"label": "pos"})


def test_next_step_names_what_undo_and_redo_would_replay_without_replaying_it(project):
    assert project.next_step("undo") is None and project.next_step("redo") is None
    project.save_annotation(1, {"label": "pos"}, annotator="ana")
    project.save_annotation(2, {"label": "neg"}, annotator="script")
    step = project.next_step("undo")
    assert (step["example_id"], step["who"], step["action"]) == (2, "script", "save")
    assert step["id"] == project.history(limit=1)[0]["id"]
    assert payload(project, 2) == ("accepted", {"label": "neg"})  # only looked
    assert project.undo() == 2
    assert project.next_step("redo")["id"] == step["id"]
    assert project.next_step("undo")["example_id"] == 1


def test_history_records_every_change_for_audit(project):
    project.save_annotation(1, {"label": "pos"}, annotator="ana")
    project.save_annotation(1, {"label": "neg"}, annotator="bo")
    project.undo()
    project.redo()
    entries = project.history(example_id=1)
    assert [e["action"] for e in entries] == ["redo", "undo", "save", "save"]
    second = entries[2]
    assert (second["old"], second["new"], second["who"]) == (
        {"label": "pos"}, {"label": "neg"}, "bo")
    assert entries[1]["target"] == second["id"] and entries[1]["new"] == {"label": "pos"}
    assert all(e["at"] for e in entries)
    assert project.history(example_id=2) == []
    assert len(project.history(limit=2)) == 2


def test_undo_survives_reopening(project):
    project.save_annotation(1, {"label": "pos"})
    project.save_annotation(2, {"label": "neg"})
    project.undo()
    path = project.path
    project.close()
    with Project.open(path) as reopened:
        assert reopened.redo() == 2
        assert reopened.undo() == 2
        assert reopened.undo() == 1
        assert reopened.count(status="unlabeled") == 4


def _child(path, then: str) -> subprocess.Popen:
    """Start a process that saves one annotation, says so, then dies the way ``then`` says."""
    script = FAKE_TASK_SOURCE + textwrap.dedent(f'''
        import os, sys, time
        registry = plugins.build_registry(extra_plugins=(FakePlugin,))
        plugins.registry = lambda: registry
        from annotune.core.store import Project
        project = Project.open({str(path)!r})
        project.save_annotation(2, {{"label": "pos"}})
        project.skip(3)
        print("saved", flush=True)
        {then}
    ''')
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("death", ["exit", "kill"])
def test_a_saved_annotation_survives_a_crash(project, death):
    project.save_annotation(1, {"label": "neg"})
    then = "os._exit(0)" if death == "exit" else "time.sleep(60)"
    child = _child(project.path, then)
    try:
        assert child.stdout.readline().strip() == "saved"
        if death == "kill":
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    assert child.returncode in (0, -signal.SIGKILL)
    with Project.open(project.path) as reopened:
        assert payload(reopened, 2) == ("accepted", {"label": "pos"})
        assert payload(reopened, 3) == ("skipped", {})
        assert reopened.undo() == 3  # the history came through whole as well
    assert payload(project, 2) == ("accepted", {"label": "pos"})  # the open one sees it too


def test_a_save_waits_for_another_writer_instead_of_failing(project):
    """Pre-annotation and the training job write to the same file while people label."""
    import sqlite3
    import threading
    import time

    other = sqlite3.connect(str(project.path), timeout=30, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process is writing a page of predictions
    other.execute("UPDATE examples SET latest_score = 0.5 WHERE id = 2")
    release = threading.Timer(0.3, other.commit)
    release.start()
    started = time.perf_counter()
    try:
        project.save_annotation(1, {"label": "pos"})  # read, then write: must wait, not fail
        project.undo()
        project.redo()
    finally:
        release.join()
        other.close()
    assert time.perf_counter() - started >= 0.25  # it waited for the other writer
    assert payload(project, 1) == ("accepted", {"label": "pos"})
    assert [h["action"] for h in project.history()][:3] == ["redo", "undo", "save"]
