"""Load the desktop's editor plugins: built-ins by module name, others by entry point."""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pluggy

from annotune.core.errors import AnnotuneError
from annotune.core.plugins import PluginFailure
from annotune.desktop import hookspecs

BUILTIN_EDITORS = ("annotune.desktop.editors.builtin",)
ENTRY_POINT_GROUP = "annotune_desktop"


@dataclass
class EditorRegistry:
    """Editor factories by annotation kind, and the plugins that failed to load."""

    editors: dict[str, Callable[..., Any]] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    def factory(self, kind: str) -> Callable[..., Any]:
        try:
            return self.editors[kind]
        except KeyError:
            known = ", ".join(sorted(self.editors)) or "none"
            raise AnnotuneError(f"no editor is installed for annotations of kind '{kind}'",
                                hint=f"installed editors: {known}") from None


def build_editor_registry(extra_plugins: tuple[Any, ...] = ()) -> EditorRegistry:
    """Load every editor plugin; a broken one is recorded in ``failures`` and skipped."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    result = EditorRegistry()
    for name in BUILTIN_EDITORS:
        try:
            manager.register(importlib.import_module(name), name=name)
        except Exception as error:
            result.failures.append(PluginFailure(name, f"{type(error).__name__}: {error}"))
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            manager.register(entry_point.load(), name=entry_point.name)
        except Exception as error:
            result.failures.append(PluginFailure(entry_point.name,
                                                 f"{type(error).__name__}: {error}"))
    for plugin in extra_plugins:
        manager.register(plugin)

    def register(kind: str, factory: Callable[..., Any]) -> None:
        result.editors[kind] = factory

    for impl in manager.hook.register_editors.get_hookimpls():
        try:
            impl.function(register)
        except Exception as error:
            result.failures.append(PluginFailure(impl.plugin_name,
                                                 f"{type(error).__name__}: {error}"))
    return result


@cache
def editor_registry() -> EditorRegistry:
    """The process-wide editor registry, loaded once."""
    return build_editor_registry()
