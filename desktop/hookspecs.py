"""The desktop-only plugin contract: editors registered per annotation kind.

Loaded by the desktop at start-up onto its own pluggy manager, so core never sees a Qt type.
A plugin implements it with ``@annotune.desktop.hookspecs.hookimpl``::

    @hookimpl
    def register_editors(register):
        register("label", LabelEditor)

``register(kind, factory)`` takes an annotation kind (``Task.annotation_kind``) and a callable
``factory(task, settings, parent=None) -> Editor`` (an ``annotune.desktop.editors.base.Editor``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "annotune_desktop"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_editors(register: Callable[[str, Any], None]) -> None:
    """Register editor factories, one ``register(annotation_kind, factory)`` call each."""
