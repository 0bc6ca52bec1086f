"""The desktop-only plugin contract: editors and views registered per annotation kind.

Loaded by the desktop at start-up onto its own pluggy manager, so core never sees a Qt type.
A plugin implements it with ``@annotune.desktop.hookspecs.hookimpl``::

    @hookimpl
    def register_editors(register):
        register("label", LabelEditor)

``register(kind, factory)`` takes an annotation kind (``Task.annotation_kind``) and a callable
``factory(task, settings, parent=None) -> Editor`` (an ``annotune.desktop.editors.base.Editor``).

The same plugin may give its kind views outside the editor (table summaries, the train
panel's label counts, Try it's result), a ``annotune.desktop.kind_views.KindView``::

    @hookimpl
    def register_views(register):
        register("label", LabelView())

A kind without registered views is shown as JSON (``kind_views.JsonView``).
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


@hookspec
def register_views(register: Callable[[str, Any], None]) -> None:
    """Register views of annotation kinds, one ``register(annotation_kind, view)`` call each."""
