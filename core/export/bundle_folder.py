"""Write a bundle into a hidden sibling folder and rename it into place only when it is whole.

A failed or interrupted export therefore never leaves a half bundle behind, and a folder that
is not an annotune bundle is never overwritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from annotune.core import bundle as bundle_files
from annotune.core.errors import AnnotuneError


def check_target(out_dir: Path) -> None:
    """Refuse a target that is a file, or a folder holding something other than a bundle."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AnnotuneError("the export target is a file, not a folder", where=str(out_dir),
                            hint="choose a new folder name for the bundle")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not bundle_files.is_bundle(out_dir):
        raise AnnotuneError("the export folder already exists and is not an annotune bundle; "
                            "refusing to overwrite it", where=str(out_dir),
                            hint="choose a new or empty folder")


@contextmanager
def staged_bundle(out_dir: Path) -> Iterator[Path]:
    """Yield a hidden folder beside ``out_dir``; move it into place when the block succeeds.

    Whatever ends the block early (an error, Ctrl-C) removes the hidden folder and leaves
    ``out_dir`` as it was.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.export-"))
    try:
        yield staging
        replace_bundle(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_bundle(staging: Path, out_dir: Path) -> None:
    """Move the finished bundle into place, replacing an older bundle (never other folders)."""
    check_target(out_dir)
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
        os.replace(out_dir, old / "bundle")
    try:
        os.replace(staging, out_dir)
    except OSError:
        if old is not None:  # put the previous bundle back rather than leave nothing
            os.replace(old / "bundle", out_dir)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
