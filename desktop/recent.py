"""Recently opened projects, remembered in QSettings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

KEY = "recent_projects"
LIMIT = 10


def recent_projects(settings: QSettings | None = None) -> list[Path]:
    """Return remembered project paths that still exist, newest first."""
    settings = settings or QSettings()
    raw = settings.value(KEY, []) or []
    if isinstance(raw, str):
        raw = [raw]
    return [Path(p) for p in raw if Path(p).exists()]


def remember_project(path: Path, settings: QSettings | None = None) -> None:
    """Put a project at the top of the recent list."""
    settings = settings or QSettings()
    paths = [str(Path(path).resolve())]
    paths += [str(p) for p in recent_projects(settings) if str(p) != paths[0]]
    settings.setValue(KEY, paths[:LIMIT])
