"""Run folders are stored relative to the project file, so runs move with their project."""

import os
import shutil

import pytest

from annotune.core.store import Project
from annotune.core.store.runs import resolve_folder, stored_folder
from annotune.core.tasks import TaskSettings


@pytest.fixture
def project_path(tmp_path):
    folder = tmp_path / "Projets d'été 🍕"
    folder.mkdir()
    path = folder / "reviews.annotune"
    Project.create(path, "text-classification", TaskSettings(labels=("neg", "pos"))).close()
    return path


def finished_run(project_path, stored):
    """Record a finished run whose checkpoint folder is stored as ``stored``."""
    with Project.open(project_path) as project:
        run_id = project.create_run({}, "cpu")
        project.finish_run(run_id, "finished", metrics={}, artifact_dir=stored)
    return run_id


def checkpoint(project_path, run_id):
    model = project_path.with_name("reviews-runs") / str(run_id) / "model"
    model.mkdir(parents=True)
    return model


def test_a_folder_inside_the_project_folder_is_stored_relative(project_path):
    model = project_path.with_name("reviews-runs") / "1" / "model"
    assert stored_folder(model, project_path.parent) == "reviews-runs/1/model"
    assert stored_folder("/elsewhere/model", project_path.parent) == "/elsewhere/model"


def test_runs_read_from_another_working_directory(project_path, monkeypatch):
    run_id = finished_run(project_path, "reviews-runs/1/model")
    model = checkpoint(project_path, run_id)
    monkeypatch.chdir("/")
    with Project.open(project_path) as project:
        assert project.run(run_id)["artifact_dir"] == str(model)
        assert project.runs()[0]["artifact_dir"] == str(model)


def test_old_paths_relative_to_the_training_folder_still_resolve(project_path, monkeypatch):
    # trained as `annotune train "Projets d'été 🍕/reviews.annotune"` from the folder above
    stored = f"{project_path.parent.name}/reviews-runs/1/model"
    run_id = finished_run(project_path, stored)
    model = checkpoint(project_path, run_id)
    monkeypatch.chdir(project_path.parent.parent)
    with Project.open(project_path) as project:
        assert project.run(run_id)["artifact_dir"] == str(model)
    monkeypatch.chdir("/")  # elsewhere the old path names nothing: the run's own folder is found
    with Project.open(project_path) as project:
        assert project.run(run_id)["artifact_dir"] == str(model)


def test_a_moved_project_finds_runs_stored_absolute(project_path, tmp_path):
    run_id = finished_run(project_path, str(project_path.with_name("reviews-runs") / "1" /
                                            "model"))
    checkpoint(project_path, run_id)
    moved = tmp_path / "moved"
    shutil.move(project_path.parent, moved)
    with Project.open(moved / "reviews.annotune") as project:
        assert project.run(run_id)["artifact_dir"] == str(moved / "reviews-runs" / "1" / "model")


def test_a_stored_folder_that_exists_nowhere_is_shown_against_the_project(project_path):
    shown = resolve_folder("reviews-runs/7/model", project_path.parent)
    assert shown == os.path.join(project_path.parent, "reviews-runs", "7", "model")
