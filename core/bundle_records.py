"""Remember where a run's bundles were exported, so the project can find them again.

A bundle may be written anywhere (``annotune export project.annotune ~/models/reviews``,
the demo's ``demo-project/bundle-int8``), far from the project's runs folder. Each export
adds its folder to ``bundles.json`` in the run's own folder (``<project>-runs/<run id>/``);
the desktop's Try it tab lists the bundles recorded under a project's runs, plus any bundle
folder kept inside them. Paths are stored relative to the run folder when they can be, so a
project moved or copied together with its bundles still finds them.

Standard library only: the Predictor-only install can import it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RECORD_NAME = "bundles.json"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class FoundBundle:
    """A bundle of one of the project's runs."""

    path: Path
    run: str  # the run folder's name (its id)


def _stored_path(run_dir: Path, bundle_dir: Path) -> str:
    try:
        return os.path.relpath(bundle_dir.resolve(), run_dir.resolve())
    except ValueError:  # another drive (Windows): only an absolute path can reach it
        return str(bundle_dir.resolve())


def _read(record: Path) -> list[dict]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = data.get("bundles") if isinstance(data, dict) else None
    return [e for e in entries or [] if isinstance(e, dict) and isinstance(e.get("path"), str)]


def record_bundle(run_dir: str | os.PathLike[str], bundle_dir: str | os.PathLike[str]) -> bool:
    """Add a bundle folder to its run's record; return False when the record cannot be written.

    The record is replaced in one rename, so a crash never leaves half a file.
    """
    run_dir, bundle_dir = Path(run_dir), Path(bundle_dir)
    record = run_dir / RECORD_NAME
    stored = _stored_path(run_dir, bundle_dir)
    entries = [e for e in _read(record)
               if _resolve(run_dir, e["path"]) != bundle_dir.resolve()]
    entries.append({"path": stored,
                    "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    try:
        handle, temporary = tempfile.mkstemp(dir=run_dir, prefix=f".{RECORD_NAME}.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"bundles": entries}, out, indent=2, ensure_ascii=False)
        os.replace(temporary, record)
    except OSError:
        return False
    return True


def _resolve(run_dir: Path, stored: str) -> Path:
    path = Path(stored)
    return (path if path.is_absolute() else run_dir / path).resolve()


def project_bundles(runs_dir: str | os.PathLike[str]) -> list[FoundBundle]:
    """Return the bundles of a project's runs that still exist, newest first.

    Found two ways: folders recorded in a run's bundles.json, and bundle folders kept inside
    the runs folder itself (the export dialog's default destination).
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found: dict[Path, FoundBundle] = {}
    for manifest in [*runs_dir.glob(f"*/*/{MANIFEST_NAME}"), *runs_dir.glob(f"*/{MANIFEST_NAME}")]:
        folder = manifest.parent
        run = folder.parent.name if folder.parent != runs_dir else ""
        found.setdefault(folder.resolve(), FoundBundle(folder, run))
    for record in runs_dir.glob(f"*/{RECORD_NAME}"):
        for entry in _read(record):
            folder = _resolve(record.parent, entry["path"])
            if (folder / MANIFEST_NAME).is_file():
                found.setdefault(folder, FoundBundle(folder, record.parent.name))

    def modified(bundle: FoundBundle) -> float:
        try:
            return (bundle.path / MANIFEST_NAME).stat().st_mtime
        except OSError:
            return 0.0

    return sorted(found.values(), key=modified, reverse=True)
