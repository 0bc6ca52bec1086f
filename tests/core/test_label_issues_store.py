"""Stored label checks: written whole, read by score, reviewed through the normal save path."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project, migrations
from annotune.core.tasks import TaskSettings

ABANDONED = "the label check process ended without recording its end (killed or crashed)"

TEXTS = ["🍕 was great", "👨\u200d👩\u200d👧 hated it", "東京 は 素晴らしい", "رائع جدا",
         "Jose\u0301 liked it"]


@pytest.fixture
def project(tmp_path):
    project = Project.create(tmp_path / "check.annotune", "text-classification",
                             TaskSettings(labels=("pos", "neg")))
    project.add_examples([ImportRecord({"text": t}, {"label": "pos" if i % 2 == 0 else "neg"})
                          for i, t in enumerate(TEXTS)])
    yield project
    project.close()


def _finish(project, issues):
    check_id = project.start_label_check({"folds": 2})
    project.finish_label_check(check_id, "finished", issues)
    return check_id


def test_a_new_project_has_the_tables_of_the_newest_schema(project):
    assert {"label_checks", "label_issues"} <= set(project.db.table_names())
    versions = [r[0] for r in project.db.execute("SELECT version FROM migrations")]
    assert versions[-1] == migrations.SCHEMA_VERSION == 7


def test_issues_come_back_by_score_with_their_state(project):
    check_id = _finish(project, [
        (1, 0.2, {"label": "pos"}, None, []),
        (2, 0.95, {"label": "neg"}, {"label": "pos"},
         [{"kind": "label", "given": "neg", "suggested": "pos", "score": 0.95}]),
        (3, 0.7, {"label": "pos"}, {"label": "neg"}, []),
    ])
    issues = project.label_issues()
    assert [i["example_id"] for i in issues] == [2, 3, 1]
    assert [i["state"] for i in issues] == ["open"] * 3
    assert issues[0]["reasons"][0]["suggested"] == "pos"
    [check] = project.label_checks()
    assert (check["id"], check["status"], check["examples"]) == (check_id, "finished", 3)
    assert check["config"] == {"folds": 2} and check["finished_at"]
    assert project.label_issues(check_id, limit=1)[0]["example_id"] == 2


def test_accepting_a_suggestion_is_a_normal_save_that_undo_takes_back(project):
    _finish(project, [(2, 0.95, {"label": "neg"}, {"label": "pos"}, [])])
    [issue] = project.label_issues()
    project.save_annotation(issue["example_id"], issue["suggestion"])
    [after] = project.label_issues()
    assert after["state"] == "changed" and after["current"] == {"label": "pos"}
    assert project.history(2)[0]["action"] == "save"
    assert project.undo() == 2
    [undone] = project.label_issues()
    assert undone["state"] == "open" and undone["current"] == {"label": "neg"}


def test_keeping_a_label_marks_the_issue_and_can_be_reopened(project):
    check_id = _finish(project, [(4, 0.8, {"label": "neg"}, {"label": "pos"}, [])])
    project.keep_label(check_id, 4)
    assert project.label_issues()[0]["state"] == "kept"
    assert project.annotation(4).payload == {"label": "neg"}  # the label itself is untouched
    project.keep_label(check_id, 4, kept=False)
    assert project.label_issues()[0]["state"] == "open"
    with pytest.raises(AnnotuneError, match="no issue for example 5"):
        project.keep_label(check_id, 5)


def test_a_running_or_stopped_check_shows_nothing(project):
    running = project.start_label_check({"folds": 5})
    assert project.label_issues() == []
    project.finish_label_check(running, "cancelled")
    assert project.label_issues() == [] and project.label_checks()[0]["status"] == "cancelled"
    with pytest.raises(AnnotuneError, match="cannot end as 'running'"):
        project.finish_label_check(running, "running")


def test_a_failing_write_stores_no_issue_at_all(project):
    check_id = project.start_label_check({})
    with pytest.raises(sqlite3.IntegrityError):  # example 99 does not exist
        project.finish_label_check(check_id, "finished",
                                   [(1, 0.9, {"label": "pos"}, None, []),
                                    (99, 0.8, {"label": "pos"}, None, [])])
    assert project.db.execute("SELECT COUNT(*) FROM label_issues").fetchone()[0] == 0
    assert project.label_checks()[0]["status"] == "running"


def test_issues_go_with_their_example(project):
    _finish(project, [(1, 0.9, {"label": "pos"}, {"label": "neg"}, [])])
    project.db.execute("PRAGMA foreign_keys = ON")
    with project.db.conn:
        project.db.execute("DELETE FROM examples WHERE id = 1")
    assert project.label_issues() == []


def test_an_old_project_gains_the_tables_when_opened(tmp_path, monkeypatch):
    path = tmp_path / "old.annotune"
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "SCHEMA_VERSION", 6)
        with Project.create(path, "text-classification",
                            TaskSettings(labels=("a", "b"))) as old:
            assert "label_issues" not in old.db.table_names()
    with Project.open(path) as project:
        assert project.label_issues() == []
        versions = [r[0] for r in project.db.execute("SELECT version FROM migrations")]
        assert versions == list(range(1, 8))


def _check_in_another_process(project_path) -> subprocess.Popen:
    """Start a label check in a child process that then waits (until killed) without ending it."""
    code = textwrap.dedent(f"""
        import sys
        from annotune.core.store import Project
        project = Project.open({str(project_path)!r})
        print(project.start_label_check({{"folds": 5}}), flush=True)
        sys.stdin.read()
        """)
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    process.check_id = int(process.stdout.readline())
    return process


def test_a_killed_check_reads_failed_with_why_and_a_live_one_running(project):
    process = _check_in_another_process(project.path)
    try:
        assert project.label_checks()[0]["status"] == "running"
        with pytest.raises(AnnotuneError, match="already running") as refused:
            project.start_label_check({"folds": 2})
        assert refused.value.where == str(project.path)
    finally:
        process.kill()  # as kill -9: the check never records its end
        process.wait()
    (check,) = project.label_checks()
    assert check["id"] == process.check_id
    assert check["status"] == "failed" and check["error"] == ABANDONED
    assert check["finished_at"] is not None
    assert project.label_issues() == []
    with Project.open(project.path) as fresh:  # written, not only shown
        assert fresh.db.execute("SELECT status FROM label_checks").fetchone()[0] == "failed"
    later = project.start_label_check({"folds": 2})  # the lock went with the process
    project.finish_label_check(later, "finished", [(1, 0.9, {"label": "pos"}, None, [])])
    assert [c["status"] for c in project.label_checks()] == ["finished", "failed"]


def test_a_check_left_unfinished_reads_failed_once_its_project_is_closed(project):
    check_id = project.start_label_check({})
    assert project.label_checks()[0]["status"] == "running"  # this process holds its lock
    path = project.path
    project.close()
    with Project.open(path) as fresh:
        assert fresh.label_checks()[0]["id"] == check_id
        assert fresh.label_checks()[0]["status"] == "failed"
