"""The `annotune gui` command, added to the CLI through the register_commands hook.

Registered as an `annotune` entry point in pyproject.toml, so the core CLI offers it without
ever importing Qt itself; Qt is imported only when the command runs.
"""

from __future__ import annotations

import argparse

from annotune.core.hookspecs import hookimpl


def _open_desktop(args: argparse.Namespace) -> int:
    from annotune.desktop.app import main

    return main([args.project] if args.project else [])


@hookimpl
def register_commands(cli):
    parser = cli.add_parser("gui", help="open the desktop app (optionally on a project)")
    parser.add_argument("project", nargs="?",
                        help="the .annotune project file to open (default: none, the start "
                             "screen with New project, Open project and recent projects)")
    parser.set_defaults(func=_open_desktop)
