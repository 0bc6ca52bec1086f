"""Before Qt aborts for want of an X11 library, annotune names the packages to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from annotune.core.errors import EXIT_NO_WINDOW
from annotune.desktop import system_libraries
from annotune.desktop.system_libraries import XCB_LIBRARIES, check, uses_xcb


def fake_loader(missing: set[str]):
    def load(name: str) -> object:
        if name in missing:
            raise OSError(f"{name}: cannot open shared object file")
        return object()
    return load


def test_a_missing_library_is_named_with_its_debian_and_fedora_packages(monkeypatch):
    monkeypatch.setattr(system_libraries, "_bundled", lambda name: False)
    line = check(environ={"QT_QPA_PLATFORM": "xcb"},
                 loader=fake_loader({"libxcb-cursor.so.0", "libxcb-icccm.so.4"}))
    assert line is not None and "\n" not in line
    assert "libxcb-cursor.so.0" in line
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4" in line
    assert "sudo dnf install xcb-util-cursor xcb-util-wm" in line


def test_nothing_is_said_when_every_library_loads():
    assert check(environ={"QT_QPA_PLATFORM": "xcb"}, loader=fake_loader(set())) is None


@pytest.mark.parametrize(("argv", "environ", "expected"), [
    ((), {"QT_QPA_PLATFORM": "offscreen"}, False),
    ((), {"QT_QPA_PLATFORM": "wayland"}, False),
    ((), {"QT_QPA_PLATFORM": "wayland;xcb"}, False),
    ((), {"QT_QPA_PLATFORM": "xcb"}, True),
    ((), {"DISPLAY": ":0"}, True),
    ((), {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, False),
    (("-platform", "offscreen"), {"DISPLAY": ":0"}, False),
    (("-platform", "xcb"), {"QT_QPA_PLATFORM": "offscreen"}, True),
])
def test_the_check_runs_only_where_qt_uses_xcb(argv, environ, expected):
    assert uses_xcb(argv, environ, platform="linux") is expected
    missing_everything = fake_loader(set(XCB_LIBRARIES))
    assert (check(argv, environ, missing_everything) is not None) is (expected and not all(
        system_libraries._bundled(name) for name in XCB_LIBRARIES))


def test_other_systems_are_never_checked():
    assert not uses_xcb((), {"QT_QPA_PLATFORM": "xcb"}, platform="darwin")


def test_the_app_exits_with_the_line_before_qt_starts(monkeypatch, capsys):
    from annotune.desktop import app

    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(system_libraries, "missing_libraries",
                        lambda loader=None: ["libxcb-cursor.so.0"])
    monkeypatch.setattr(app, "application", lambda *a: pytest.fail("Qt started anyway"))
    assert app.main([]) == EXIT_NO_WINDOW
    assert "libxcb-cursor0" in capsys.readouterr().err


def _qt_files() -> list[Path]:
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    return [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]


@pytest.mark.skipif(shutil.which("ldd") is None or os.uname().sysname != "Linux",
                    reason="ldd lists the plugin's libraries on Linux only")
def test_the_table_covers_every_system_library_of_the_xcb_plugin():
    system_runtime = ("linux-vdso", "ld-linux", "libc.so", "libm.so", "libstdc++", "libgcc_s",
                      "libpthread", "libdl.so", "librt.so")
    needed = set()
    for path in _qt_files():
        output = subprocess.run(["readelf", "-d", str(path)], capture_output=True,
                                text=True).stdout if shutil.which("readelf") else ""
        if not output:
            pytest.skip("readelf is not installed")
        for line in output.splitlines():
            if "(NEEDED)" in line:
                needed.add(line.split("[")[1].rstrip("]"))
    own = {name for name in needed if name.startswith("libQt6")}
    expected = {n for n in needed - own if not n.startswith(system_runtime)}
    assert expected <= set(XCB_LIBRARIES), sorted(expected - set(XCB_LIBRARIES))
