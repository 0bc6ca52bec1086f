"""Find base models a person can train from: bundled, in the local Hugging Face cache, folders."""

from __future__ import annotations

import os
from pathlib import Path

BUNDLED_TITLE = "Bundled: all-MiniLM-L6-v2 (fast, 22M parameters)"


def hub_cache_dirs() -> list[Path]:
    """Return the Hugging Face hub cache folders this machine uses (existing ones only)."""
    candidates = []
    if os.environ.get("HF_HUB_CACHE"):
        candidates.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        candidates.append(Path(os.environ["HUGGINGFACE_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        candidates.append(Path(os.environ["HF_HOME"]) / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    candidates.append((Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub")
    seen: list[Path] = []
    for path in candidates:
        if path.is_dir() and path not in seen:
            seen.append(path)
    return seen


def cached_models(folders: list[Path] | None = None) -> list[str]:
    """Return hub ids (``org/name``) of models with a downloaded snapshot in the cache."""
    found: set[str] = set()
    for folder in hub_cache_dirs() if folders is None else folders:
        for entry in folder.glob("models--*"):
            snapshots = entry / "snapshots"
            if not snapshots.is_dir() or not any(snapshots.iterdir()):
                continue
            found.add(entry.name[len("models--"):].replace("--", "/"))
    return sorted(found)


def describe_choice(value: str | None) -> str:
    """Return how a base model choice is shown in the run list."""
    if not value:
        return "bundled all-MiniLM-L6-v2"
    path = Path(value)
    return path.name if path.is_dir() else value
