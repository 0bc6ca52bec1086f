"""Turn annotation and prediction payloads into one short line of text for tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def summarize(payload: Mapping[str, Any] | None, text: str = "") -> str:
    """Return e.g. ``pos``, ``a, b``, ``PER “Ada” · ORG “IBM”`` or ``“1889”`` for a payload."""
    if not payload:
        return ""
    if payload.get("labels") is not None:
        return ", ".join(map(str, payload["labels"])) or "(none)"
    if payload.get("label") is not None:
        return str(payload["label"])
    if payload.get("spans") is not None:
        parts = []
        for span in payload["spans"]:
            shown = span.get("text") or text[int(span["start"]):int(span["end"])]
            parts.append(f"{span['label']} “{shown}”")
        return " · ".join(parts) or "(no entities)"
    if payload.get("answers") is not None:
        answers = payload["answers"]
        return f"“{answers[0]['text']}”" if answers else "(no answer)"
    if "text" in payload:
        return f"“{payload['text']}”" if payload["text"] else "(no answer)"
    return ""


def label_set(payload: Mapping[str, Any] | None) -> frozenset[str] | None:
    """Return the labels a classification payload names (None for other kinds)."""
    if not payload:
        return None
    if payload.get("labels") is not None:
        return frozenset(payload["labels"])
    if payload.get("label") is not None:
        return frozenset([payload["label"]])
    if payload.get("spans") is not None:
        return frozenset((s["start"], s["end"], s["label"]) for s in payload["spans"])
    if payload.get("answers") is not None:
        answers = payload["answers"]
        return frozenset([answers[0]["text"].strip()] if answers else [""])
    if "text" in payload:
        return frozenset([str(payload["text"]).strip()])
    return None


def disagrees(annotation: Mapping[str, Any] | None, prediction: Mapping[str, Any] | None) -> bool:
    """True when a model prediction differs from the accepted annotation."""
    if not annotation or not prediction:
        return False
    return label_set(annotation) != label_set(prediction)
