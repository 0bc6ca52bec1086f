"""An export never destroys the project, another project, or (unasked) an existing file.

`annotune export-data p.annotune p.annotune --format jsonl` used to replace the project with
its own JSON lines: every label gone, and the next open said "not an annotune project".
"""

from __future__ import annotations

import os

import pytest

from annotune.core.cli import main
from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.formats.importing import export_data
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

SETTINGS = TaskSettings(labels=("neg", "pos"))


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "reviews.annotune", task="text-classification",
                        settings=SETTINGS) as opened:
        opened.add_examples([ImportRecord({"text": "great 🍕"}, {"label": "pos"}),
                             ImportRecord({"text": "Jose\u0301 שלום"}, {"label": "neg"})])
        yield opened


@pytest.mark.parametrize("name", ["reviews.annotune", "reviews.annotune-wal",
                                  "reviews.annotune-shm", "link.annotune"])
def test_the_project_and_its_companions_are_never_an_export_target(tmp_path, project, name):
    os.link(project.path, tmp_path / "link.annotune")  # the same file under another name
    with pytest.raises(AnnotuneError, match="would destroy the project"):
        export_data(project, tmp_path / name, format="jsonl")
    assert project.count() == 2
    with Project.open(tmp_path / "reviews.annotune") as again:
        assert [s.payload for _, s in again.annotated()] == [{"label": "pos"},
                                                             {"label": "neg"}]


def test_another_project_is_never_replaced(tmp_path, project):
    Project.create(tmp_path / "other.annotune", task="text-classification",
                   settings=SETTINGS).close()
    with pytest.raises(AnnotuneError, match="SQLite database"):
        export_data(project, tmp_path / "other.annotune", format="csv")
    with Project.open(tmp_path / "other.annotune") as other:
        assert other.count() == 0


def test_the_cli_replaces_an_existing_file_only_with_force(tmp_path, project, capsys):
    source = tmp_path / "reviews.csv"  # e.g. the file the project was imported from
    source.write_text("text,label,notes\ngreat 🍕,pos,kept only here\n", encoding="utf-8")
    project.close()
    arguments = ["export-data", str(tmp_path / "reviews.annotune"), str(source)]
    assert main(arguments) != 0
    assert "already exists" in capsys.readouterr().err
    assert "kept only here" in source.read_text(encoding="utf-8")
    assert main([*arguments, "--force"]) == 0
    assert "kept only here" not in source.read_text(encoding="utf-8")
    assert main([*arguments[:2], str(tmp_path / "reviews.annotune"), "--format", "jsonl",
                 "--force"]) != 0
    with Project.open(tmp_path / "reviews.annotune") as again:
        assert again.count() == 2
