"""Bundles exported from a project's runs are found again, wherever they were written."""

from __future__ import annotations

import json
import os
import shutil

from annotune.core.bundle_records import RECORD_NAME, project_bundles, record_bundle


def _bundle(folder):
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}", encoding="utf-8")
    return folder


def test_a_bundle_written_beside_the_project_is_found_through_its_run(tmp_path):
    runs = tmp_path / "demo-runs"
    (runs / "1" / "model").mkdir(parents=True)
    bundle = _bundle(tmp_path / "bundle-int8")
    assert project_bundles(runs) == []  # outside the runs folder: unknown until recorded
    assert record_bundle(runs / "1", bundle)
    (found,) = project_bundles(runs)
    assert found.path == bundle.resolve() and found.run == "1"
    stored = json.loads((runs / "1" / RECORD_NAME).read_text(encoding="utf-8"))
    assert stored["bundles"][0]["path"] == os.path.join("..", "..", "bundle-int8")


def test_recording_twice_keeps_one_entry_and_vanished_bundles_are_left_out(tmp_path):
    runs = tmp_path / "p-runs"
    (runs / "2").mkdir(parents=True)
    kept = _bundle(tmp_path / "models" / "reviews 🍕 fp32")
    gone = _bundle(tmp_path / "models" / "old")
    for bundle in (kept, kept, gone):
        assert record_bundle(runs / "2", bundle)
    shutil.rmtree(gone)
    entries = json.loads((runs / "2" / RECORD_NAME).read_text(encoding="utf-8"))["bundles"]
    assert len(entries) == 2
    assert [b.path for b in project_bundles(runs)] == [kept.resolve()]


def test_a_project_moved_with_its_bundles_still_finds_them(tmp_path):
    runs = tmp_path / "old" / "p-runs"
    (runs / "1").mkdir(parents=True)
    record_bundle(runs / "1", _bundle(tmp_path / "old" / "bundle-fp32"))
    shutil.move(tmp_path / "old", tmp_path / "new")
    (found,) = project_bundles(tmp_path / "new" / "p-runs")
    assert found.path == (tmp_path / "new" / "bundle-fp32").resolve()


def test_bundles_inside_the_runs_folder_need_no_record(tmp_path):
    runs = tmp_path / "p-runs"
    inside = _bundle(runs / "3" / "bundle-fp32")
    assert [(b.path, b.run) for b in project_bundles(runs)] == [(inside, "3")]


def test_a_damaged_record_is_ignored_and_replaced(tmp_path):
    runs = tmp_path / "p-runs"
    (runs / "1").mkdir(parents=True)
    (runs / "1" / RECORD_NAME).write_text("{not json", encoding="utf-8")
    assert project_bundles(runs) == []
    bundle = _bundle(tmp_path / "b")
    assert record_bundle(runs / "1", bundle)
    assert [b.path for b in project_bundles(runs)] == [bundle.resolve()]


def test_a_run_folder_that_cannot_be_written_is_reported_not_raised(tmp_path, monkeypatch):
    import annotune.core.bundle_records as records

    run = tmp_path / "p-runs" / "1"
    run.mkdir(parents=True)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(records.tempfile, "mkstemp", refuse)
    assert record_bundle(run, _bundle(tmp_path / "b")) is False
    assert not (run / RECORD_NAME).exists()
