"""Load the desktop's editor and view plugins: built-ins by module name, others by entry point."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.plugins import PluginFailure, collect, load_plugins
from annotune.desktop import hookspecs
from annotune.desktop.kind_views import JsonView, KindView

BUILTIN_EDITORS = ("annotune.desktop.editors.builtin",)
ENTRY_POINT_GROUP = "annotune_desktop"


@dataclass
class EditorRegistry:
    """Editor factories and views by annotation kind, and the plugins that failed to load."""

    editors: dict[str, Callable[..., Any]] = field(default_factory=dict)
    views: dict[str, KindView] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    def factory(self, kind: str) -> Callable[..., Any]:
        try:
            return self.editors[kind]
        except KeyError:
            known = ", ".join(sorted(self.editors)) or "none"
            raise AnnotuneError(f"no editor is installed for annotations of kind '{kind}'",
                                hint=f"installed editors: {known}") from None

    def view(self, kind: str) -> KindView:
        """Return the views of ``kind``; JSON for a kind no plugin gave views."""
        return self.views[kind] if kind in self.views else JsonView()

    def view_of(self, payload: Mapping[str, Any]) -> KindView:
        """Return the views of the first kind that recognizes ``payload`` (JSON when none)."""
        return next((view for view in self.views.values() if view.recognizes(payload)),
                    JsonView())


def build_editor_registry(extra_plugins: tuple[Any, ...] = ()) -> EditorRegistry:
    """Load every editor and view plugin; a broken one is recorded in ``failures`` and skipped."""
    manager, failures = load_plugins(hookspecs, BUILTIN_EDITORS, ENTRY_POINT_GROUP, extra_plugins)
    result = EditorRegistry(failures=failures)

    def register(kind: str, factory: Callable[..., Any]) -> None:
        if kind in result.editors:  # two editors for one kind: which one shows would be luck
            raise AnnotuneError(f"an editor for annotations of kind '{kind}' is registered twice")
        result.editors[kind] = factory

    def register_view(kind: str, view: KindView) -> None:
        if kind in result.views:
            raise AnnotuneError(f"views of annotations of kind '{kind}' are registered twice")
        result.views[kind] = view

    collect(manager, "register_editors", failures, register)
    collect(manager, "register_views", failures, register_view)
    return result


@cache
def editor_registry() -> EditorRegistry:
    """The process-wide editor registry, loaded once."""
    return build_editor_registry()
