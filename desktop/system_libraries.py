"""Check the system libraries Qt's X11 (xcb) platform plugin needs, before Qt aborts without them.

PySide6's wheels carry Qt but not the X11 client libraries its xcb plugin links to. Without
one of them Qt prints a long plugin message and aborts the process (exit 134). annotune
looks first and says in one line which packages to install.

No Qt import: this runs before QApplication exists. The table below lists what ``ldd``
reports for PySide6's ``plugins/platforms/libqxcb.so`` and ``lib/libQt6XcbQpa.so.6``
outside Qt itself and the C/C++ runtime (tests/packaging/test_system_libraries.py compares
it with ldd's list when it can).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# library soname -> (Debian/Ubuntu package, Fedora package)
XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}

Loader = Callable[[str], object]


def _platform_argument(argv: Sequence[str]) -> str | None:
    """Return the value of Qt's ``-platform NAME`` (or ``--platform=NAME``) option."""
    for index, argument in enumerate(argv):
        if argument in ("-platform", "--platform") and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith(("-platform=", "--platform=")):
            return argument.split("=", 1)[1]
    return None


def uses_xcb(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None,
             platform: str = sys.platform) -> bool:
    """Tell whether Qt will open its X11 (xcb) platform plugin.

    An explicit platform (``-platform`` or QT_QPA_PLATFORM, whose first entry Qt tries
    first) decides. Otherwise Qt 6 on Linux takes Wayland in a Wayland session and xcb
    everywhere else.
    """
    if not platform.startswith("linux"):
        return False
    environ = os.environ if environ is None else environ
    chosen = _platform_argument(argv) or environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0].strip().lower() == "xcb"
    wayland = environ.get("XDG_SESSION_TYPE", "").lower() == "wayland" and bool(
        environ.get("WAYLAND_DISPLAY"))
    return not wayland


def _bundled(name: str) -> bool:
    """Whether a library lies inside the app or the Qt installation (the frozen app may carry
    some of them itself)."""
    folders = [Path(getattr(sys, "_MEIPASS", "")) if getattr(sys, "frozen", False) else None]
    try:
        import importlib.util

        spec = importlib.util.find_spec("PySide6")
        if spec is not None and spec.submodule_search_locations:
            folders.append(Path(list(spec.submodule_search_locations)[0]) / "Qt" / "lib")
    except (ImportError, ValueError):
        pass
    return any(folder is not None and (folder / name).exists() for folder in folders)


def missing_libraries(loader: Loader = ctypes.CDLL) -> list[str]:
    """Return the sonames of the xcb plugin's libraries that cannot be loaded."""
    missing = []
    for name in XCB_LIBRARIES:
        try:
            loader(name)
        except OSError:
            if not _bundled(name):
                missing.append(name)
    return missing


def install_line(missing: Sequence[str]) -> str:
    """Describe what is missing and the packages to install, on one line."""
    debian = sorted({XCB_LIBRARIES[name][0] for name in missing})
    fedora = sorted({XCB_LIBRARIES[name][1] for name in missing})
    return (f"annotune cannot open a window: Qt's X11 platform needs system libraries that "
            f"are missing ({', '.join(missing)}) — install them with "
            f"`sudo apt install {' '.join(debian)}` (Debian/Ubuntu) or "
            f"`sudo dnf install {' '.join(fedora)}` (Fedora), "
            f"or run with QT_QPA_PLATFORM=wayland in a Wayland session")


def check(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None,
          loader: Loader = ctypes.CDLL) -> str | None:
    """Return the one-line problem when Qt would abort for want of xcb libraries, else None."""
    if not uses_xcb(argv, environ):
        return None
    missing = missing_libraries(loader)
    return install_line(missing) if missing else None
