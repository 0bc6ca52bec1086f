"""Base models offered by the train panel: bundled, local Hugging Face cache, folders."""

from __future__ import annotations

from annotune.desktop.base_models import cached_models, describe_choice, hub_cache_dirs


def test_cached_models_lists_downloaded_snapshots(tmp_path, monkeypatch):
    hub = tmp_path / "hf" / "hub"
    (hub / "models--org--small-bert" / "snapshots" / "abc123").mkdir(parents=True)
    (hub / "models--empty--model" / "snapshots").mkdir(parents=True)  # nothing downloaded
    (hub / "datasets--org--data" / "snapshots" / "x").mkdir(parents=True)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hub in hub_cache_dirs()
    assert cached_models([hub]) == ["org/small-bert"]
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    assert "org/small-bert" in cached_models()


def test_describe_choice(tmp_path):
    assert describe_choice(None) == "bundled all-MiniLM-L6-v2"
    assert describe_choice(str(tmp_path)) == tmp_path.name
    assert describe_choice("org/model") == "org/model"
