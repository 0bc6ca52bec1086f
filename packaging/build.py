"""Build the desktop app as one folder: ``dist/annotune/`` (run by ``make app``).

Steps: annotune's wheel (the app carries it, to set up a training environment), PyInstaller
with packaging/annotune.spec, then the launcher files (``annotune.desktop``, icons,
``install.sh``) beside the program. Ends by checking that no torch or transformers file was
carried along and printing the folder's size.

    .venv/bin/python packaging/build.py [--dist dist] [--work build/app]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "packaging"
FORBIDDEN = ("torch", "transformers", "sentence_transformers", "scipy", "sklearn")

INSTALL_SCRIPT = """#!/bin/sh
# Put annotune on the desktop menu and the PATH of this user (no root needed).
set -e
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$HOME/.local/bin" "$DATA/applications"
ln -sf "$HERE/annotune" "$HOME/.local/bin/annotune-desktop"
for png in "$HERE"/share/icons/annotune-*.png; do
    size="${png##*annotune-}"; size="${size%.png}"
    mkdir -p "$DATA/icons/hicolor/${size}x${size}/apps"
    cp "$png" "$DATA/icons/hicolor/${size}x${size}/apps/annotune.png"
done
mkdir -p "$DATA/icons/hicolor/scalable/apps"
cp "$HERE/share/icons/annotune.svg" "$DATA/icons/hicolor/scalable/apps/annotune.svg"
sed "s|^Exec=.*|Exec=$HERE/annotune %f|" "$HERE/share/annotune.desktop" \\
    > "$DATA/applications/annotune.desktop"
echo "annotune is in the applications menu and runs as annotune-desktop"
"""


def run(command: list[str], **kwargs) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, **kwargs)


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*")
               if path.is_file() and not path.is_symlink())


def carried_forbidden(app: Path) -> list[str]:
    """Return the files of the app that belong to the training side (must be none)."""
    internal = app / "_internal"
    return sorted(str(path.relative_to(app)) for path in internal.iterdir()
                  if path.name.split("-")[0].split(".")[0] in FORBIDDEN)


def build(dist: Path, work: Path) -> Path:
    """Build the app folder and return it."""
    wheels = work / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(wheels), str(ROOT)])
    (wheel,) = wheels.glob("annotune-*.whl")
    env = {**os.environ, "ANNOTUNE_APP_WHEEL": str(wheel)}
    run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(work / "pyinstaller"),
         str(HERE / "annotune.spec")], env=env)
    app = dist / "annotune"
    share = app / "share"
    (share / "icons").mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "annotune.desktop", share / "annotune.desktop")
    for icon in (ROOT / "desktop" / "icons").iterdir():
        shutil.copy2(icon, share / "icons" / icon.name)
    script = app / "install.sh"
    script.write_text(INSTALL_SCRIPT)
    script.chmod(0o755)
    forbidden = carried_forbidden(app)
    if forbidden:
        raise SystemExit(f"the app carries training-side files: {', '.join(forbidden)}")
    print(f"built {app} ({folder_size(app) / 2**20:.0f} MiB); run {app / 'annotune'}")
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description="build the annotune desktop app folder")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "app")
    args = parser.parse_args()
    build(args.dist.resolve(), args.work.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
