"""Start the desktop app: ``annotune-desktop [PROJECT]`` or ``annotune gui PROJECT``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from annotune.core import __version__
from annotune.core.errors import EXIT_NO_WINDOW
from annotune.desktop import system_libraries
from annotune.desktop.crash import CrashHandler, setup_logging
from annotune.desktop.style import apply_style

log = logging.getLogger("annotune.desktop")

ORGANIZATION = "annotune"
APPLICATION = "annotune"


def application(argv: Sequence[str] = ()) -> QApplication:
    """Return the running QApplication, creating it (with annotune's names) when needed."""
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "annotune", *argv])
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    QApplication.setApplicationVersion(__version__)
    QApplication.setDesktopFileName("annotune")  # ties windows to packaging/annotune.desktop
    apply_style(app)  # palette, dark mode and the window icon
    return app  # type: ignore[return-value]


def plugin_failures(window: object) -> list[str]:
    """Collect the plugins (core and desktop) that failed to load."""
    failures = list(window.registry.failures)
    failures += list(window.editors.failures)
    return [str(f) for f in failures]


def show_plugin_failures(parent: QWidget, failures: Sequence[str]) -> QMessageBox | None:
    """Show every failed plugin in one dialog (once per start)."""
    if not failures:
        return None
    for failure in failures:
        log.warning("%s", failure)
    box = QMessageBox(QMessageBox.Icon.Warning, "Some plugins were skipped",
                      "annotune started without these plugins:\n\n" + "\n".join(failures)
                      + "\n\nReinstall or remove the packages that provide them.", parent=parent)
    box.setObjectName("plugin_failures")
    box.open()
    return box


def build_window(project: Path | None = None):  # noqa: ANN201 - the MainWindow
    """Create the main window, open the project if given, report plugin failures."""
    from annotune.desktop.main_window import MainWindow

    window = MainWindow()
    geometry = QSettings().value("geometry")
    if geometry is not None:
        window.restoreGeometry(geometry)
    window.show()
    if project is not None:
        window.open_project(project)
    window.plugin_dialog = show_plugin_failures(window, plugin_failures(window))
    return window


def main(argv: Sequence[str] | None = None) -> int:
    """Run the desktop app until its window closes; return the exit code."""
    parser = argparse.ArgumentParser(prog="annotune-desktop",
                                     description="Label text, train and export models.")
    parser.add_argument("project", nargs="?", help="a .annotune project file to open")
    parser.add_argument("--self-test", metavar="STEPS",
                        help="walk through the app, report each step as a JSON line and quit: "
                             "a comma-separated choice of startup,label,predict,train,export")
    parser.add_argument("--bundle", type=Path, help="the bundle the predict step uses")
    parser.add_argument("--base-model", help="the base model the train step uses")
    args, qt_args = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    problem = system_libraries.check(qt_args)  # Qt would abort (exit 134) with no word on why
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_NO_WINDOW
    app = application(qt_args)
    log_path = setup_logging()
    handler = CrashHandler(log_path)
    handler.install()
    log.info("annotune %s desktop starting", __version__)
    try:
        if args.self_test:
            from annotune.desktop import self_test

            window = build_window(None)
            code = self_test.run(window, args.self_test.split(","),
                                 Path(args.project) if args.project else None, args.bundle,
                                 args.base_model)
            window.close_project(ask=False)
            window.close()
            return code
        window = build_window(Path(args.project) if args.project else None)
        code = app.exec()
        del window
    finally:
        handler.uninstall()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
