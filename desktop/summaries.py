"""Turn annotation and prediction payloads into one short line of text for tables.

What a payload looks like depends on its annotation kind; the kind's registered views
(desktop/kind_views.py) say it. Without a kind, the first kind that recognizes the payload
speaks for it; a payload of no known kind reads as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from annotune.desktop.kind_views import KindView
from annotune.desktop.plugins import editor_registry


def view_for(payload: Mapping[str, Any], kind: str | None = None) -> KindView:
    """Return the views of ``kind``, or of the kind that recognizes ``payload``."""
    registry = editor_registry()
    return registry.view(kind) if kind else registry.view_of(payload)


def summarize(payload: Mapping[str, Any] | None, text: str = "", kind: str | None = None) -> str:
    """Return e.g. ``pos``, ``a, b``, ``PER “Ada” · ORG “IBM”`` or ``“1889”`` for a payload."""
    if not payload:
        return ""
    return view_for(payload, kind).summary(payload, text)


def label_set(payload: Mapping[str, Any] | None, kind: str | None = None
              ) -> frozenset[Any] | None:
    """Return what a payload must share with another to agree (None when there is nothing)."""
    if not payload:
        return None
    return view_for(payload, kind).comparable(payload)


def disagrees(annotation: Mapping[str, Any] | None, prediction: Mapping[str, Any] | None,
              kind: str | None = None) -> bool:
    """True when a model prediction differs from the accepted annotation."""
    if not annotation or not prediction:
        return False
    return label_set(annotation, kind) != label_set(prediction, kind)
