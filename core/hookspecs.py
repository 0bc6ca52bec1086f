"""The plugin contract: hooks that hand plugins a ``register`` callable.

Plugins implement any of these with ``@annotune.core.hookspecs.hookimpl``. Built-in tasks are
plugins too, loaded by module name; third-party ones are found through the ``annotune``
entry-point group.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import pluggy

if TYPE_CHECKING:  # the contract names these types; importing them here would be a cycle
    from annotune.core.formats.base import Exporter, Importer
    from annotune.core.tasks import Task

PROJECT_NAME = "annotune"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

# argparse's sub-parsers action, as ``add_subparsers()`` returns it
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@hookspec
def register_tasks(register: Callable[[Task], None]) -> None:
    """Register Task objects (annotune.core.tasks.Task subclasses), one call per task."""


@hookspec
def register_formats(register: Callable[[Importer | Exporter], None]) -> None:
    """Register Importer and Exporter objects (annotune.core.formats.base) for file formats."""


@hookspec
def register_commands(cli: SubParsers) -> None:
    """Add sub-commands to the CLI; ``cli`` is the argparse sub-parsers action.

    Each added parser must set ``func`` with ``parser.set_defaults(func=callable)``; the
    callable receives the parsed arguments and returns an exit code.
    """
