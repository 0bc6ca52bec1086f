"""The plugin manager: built-in plugins by module name, third-party ones by entry point.

A plugin that fails to import or to register is recorded in ``failures`` and skipped, so one
broken third-party package never stops annotune from starting.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, cast

import pluggy

from annotune.core import hookspecs
from annotune.core.errors import AnnotuneError

if TYPE_CHECKING:  # tasks and formats import this module's registry at run time
    from annotune.core.formats.base import Exporter, Importer
    from annotune.core.tasks import Task

BUILTIN_PLUGINS = (
    "annotune.core.formats.tabular",
    "annotune.plugins.conll",
    "annotune.plugins.text_classification",
    "annotune.plugins.pair_classification",
    "annotune.plugins.token_classification",
    "annotune.plugins.question_answering",
    "annotune.plugins.squad",
)
ENTRY_POINT_GROUP = "annotune"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was skipped, and why (shown as a CLI warning or a desktop dialog)."""

    name: str
    error: str

    def __str__(self) -> str:
        return f"plugin '{self.name}' was skipped: {self.error}"


class Registry:
    """Everything the loaded plugins registered: tasks, importers, exporters."""

    def __init__(self, manager: pluggy.PluginManager, failures: list[PluginFailure]):
        self.manager = manager
        self.failures = failures
        self.tasks: dict[str, Task] = {}
        self.importers: dict[str, Importer] = {}
        self.exporters: dict[str, Exporter] = {}

    def task(self, name: str) -> Task:
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise AnnotuneError(f"unknown task '{name}'",
                                hint=f"installed tasks: {known} (see `annotune plugins`)") from None

    def importer(self, name: str) -> Importer:
        try:
            return self.importers[name]
        except KeyError:
            known = ", ".join(sorted(self.importers))
            raise AnnotuneError(f"unknown import format '{name}'",
                                hint=f"choose one of: {known}") from None

    def exporter(self, name: str) -> Exporter:
        try:
            return self.exporters[name]
        except KeyError:
            known = ", ".join(sorted(self.exporters))
            raise AnnotuneError(f"unknown export format '{name}'",
                                hint=f"choose one of: {known}") from None


def load_plugins(specs: ModuleType, builtin: tuple[str, ...], group: str,
                 extra_plugins: tuple[object, ...] = ()) -> tuple[pluggy.PluginManager,
                                                               list[PluginFailure]]:
    """Register the built-in modules, the entry points of ``group`` and ``extra_plugins``.

    The one loader of core's task plugins and the desktop's editor plugins: a plugin that fails
    to import or register is recorded and skipped, never fatal.
    """
    manager = pluggy.PluginManager(specs.PROJECT_NAME)
    manager.add_hookspecs(specs)
    failures: list[PluginFailure] = []
    for module_name in builtin:
        try:
            manager.register(importlib.import_module(module_name), name=module_name)
        except Exception as error:  # a broken built-in must not stop the others either
            failures.append(PluginFailure(module_name, f"{type(error).__name__}: {error}"))
    for entry_point in importlib.metadata.entry_points(group=group):
        if manager.get_plugin(entry_point.name) is not None:
            continue
        try:
            manager.register(entry_point.load(), name=entry_point.name)
        except Exception as error:
            failures.append(PluginFailure(entry_point.name, f"{type(error).__name__}: {error}"))
    for plugin in extra_plugins:
        manager.register(plugin)
    return manager, failures


def collect(manager: pluggy.PluginManager, hook_name: str, failures: list[PluginFailure],
            register: Callable[..., None]) -> None:
    """Call one register_* hook plugin by plugin, so a failing plugin is skipped alone."""
    for impl in getattr(manager.hook, hook_name).get_hookimpls():
        try:
            impl.function(register)
        except Exception as error:
            failures.append(PluginFailure(impl.plugin_name, f"{type(error).__name__}: {error}"))


def build_registry(extra_plugins: tuple[object, ...] = ()) -> Registry:
    """Load every plugin and collect what they register (a fresh registry each call)."""
    manager, failures = load_plugins(hookspecs, BUILTIN_PLUGINS, ENTRY_POINT_GROUP,
                                     extra_plugins)
    registry = Registry(manager, failures)

    def add_task(task: Task) -> None:
        if task.name in registry.tasks:
            raise AnnotuneError(f"task '{task.name}' is registered twice")
        registry.tasks[task.name] = task

    def add_format(fmt: Importer | Exporter) -> None:
        # one object may do both; what it can do is what it has (a third party's class need
        # not derive from anything)
        if hasattr(fmt, "read"):
            registry.importers[fmt.name] = cast("Importer", fmt)
        if hasattr(fmt, "write"):
            registry.exporters[fmt.name] = cast("Exporter", fmt)

    collect(manager, "register_tasks", failures, add_task)
    collect(manager, "register_formats", failures, add_format)
    return registry


@cache
def registry() -> Registry:
    """The process-wide registry, loaded once on first use."""
    return build_registry()
