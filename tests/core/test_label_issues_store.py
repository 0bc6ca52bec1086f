"""Stored label checks: written whole, read by score, reviewed through the normal save path."""

from __future__ import annotations

import sqlite3

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project, migrations
from annotune.core.tasks import TaskSettings

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
