"""Register the built-in editors and views through the desktop hooks, like any other plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from annotune.desktop.editors.answers_editor import AnswersEditor
from annotune.desktop.editors.answers_view import AnswersView
from annotune.desktop.editors.label_editor import LabelEditor
from annotune.desktop.editors.label_view import LabelView
from annotune.desktop.editors.spans_editor import SpansEditor
from annotune.desktop.editors.spans_view import SpansView
from annotune.desktop.hookspecs import hookimpl


@hookimpl
def register_editors(register: Callable[[str, Any], None]) -> None:
    register("label", LabelEditor)
    register("spans", SpansEditor)
    register("answers", AnswersEditor)


@hookimpl
def register_views(register: Callable[[str, Any], None]) -> None:
    register("label", LabelView())
    register("spans", SpansView())
    register("answers", AnswersView())
