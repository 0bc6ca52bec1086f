"""Count the texts longer than one model window: read in several windows, or cut.

A model reads at most ``max_length`` tokens at once. Every built-in task reads a longer text in
overlapping windows and combines their outputs (classification averages the windows' logits,
NER takes each token from the window where it has the most context, QA keeps the best span
of any window); what no window holds is cut (a question-answering question over 64 tokens, the
shorter text of a long sentence pair beyond half a window). Nothing is cut silently: these
counts reach ``annotune stats``, the training's "started" event, run.json and the export
report, from the features the task's own ``encode`` makes (``Feature.truncated``).

Torch-free: tokenizers only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from annotune.core.tasks import ExampleFields, Feature, Task, TaskSettings

CHUNK = 2000  # examples encoded at once when counting a whole project (bounded memory)


def window_counts(features: Sequence[Feature], examples: int) -> dict[str, int]:
    """Count examples read in several windows and examples cut, from their features."""
    per_example = Counter(feature.example_index for feature in features)
    return {"examples": examples,
            "windowed": sum(1 for n in per_example.values() if n > 1),
            "truncated": len({f.example_index for f in features if f.truncated}),
            "windows": len(features)}


def count_long_texts(task: Task, tokenizer: Any, examples: Sequence[ExampleFields],
                     settings: TaskSettings) -> dict[str, int]:
    """Encode ``examples`` as training would, a chunk at a time, and count their windows."""
    totals = {"examples": 0, "windowed": 0, "truncated": 0, "windows": 0}
    for start in range(0, len(examples), CHUNK):
        part = examples[start:start + CHUNK]
        counts = window_counts(task.encode(tokenizer, part, None, settings), len(part))
        for key, value in counts.items():
            totals[key] += value
    return totals


def describe(counts: Mapping[str, int] | None, max_length: int) -> str | None:
    """Say in one line how many texts are longer than a window; None when none is."""
    if not counts or not (counts.get("windowed") or counts.get("truncated")):
        return None
    total = counts.get("examples", 0)
    parts = []
    if counts.get("windowed"):
        parts.append(f"{counts['windowed']:,} of {total:,} texts are longer than {max_length} "
                     "tokens: each is read in overlapping windows whose predictions are "
                     "combined")
    if counts.get("truncated"):
        parts.append(f"{counts['truncated']:,} of {total:,} lose text that no window holds "
                     "(cut to fit)")
    return "; ".join(parts)


def tokenizer_for(base_model: str | None) -> Any | None:
    """Return the tokenizer of a local base model (None: the bundled one), or None.

    A hub id is not looked up (no network, no transformers): its counts wait for training.
    """
    from annotune.core import base_model as bundled
    from annotune.core.features import prepare_tokenizer

    if base_model in (None, "", bundled.NAME):
        folder = bundled.find()
    else:
        folder = Path(base_model).expanduser()
    path = folder / "tokenizer.json" if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        return prepare_tokenizer(path)
    except Exception:  # a tokenizer file this version of tokenizers cannot read
        return None


def count_for_training(task: Task, settings: TaskSettings, base_model: str | None,
                       max_length: int | None, examples: Sequence[ExampleFields]
                       ) -> dict[str, Any] | None:
    """Count the long texts of a training's examples before its model loads (None: unknown).

    Uses the base model's tokenizer file when it is local; never raises, since the training
    itself reports a base model it cannot load.
    """
    tokenizer = tokenizer_for(base_model)
    if tokenizer is None:
        return None
    if max_length is not None:
        settings = settings.with_(max_length=int(max_length))
    try:
        counts = count_long_texts(task, tokenizer, examples, settings)
    except Exception:  # the training's own encode says what is wrong, with its context
        return None
    return {"max_length": settings.max_length, **counts}


def project_long_texts(project: Any) -> dict[str, Any]:
    """Count the long texts among all of a project's examples, with its base model's tokenizer.

    The answer says why when it cannot count (a base model that is not a local folder).
    """
    settings = project.settings
    result: dict[str, Any] = {"max_length": settings.max_length, "stride": settings.stride}
    tokenizer = tokenizer_for(project.base_model)
    if tokenizer is None:
        result["unknown"] = (f"the base model {project.base_model!r} is not a local folder "
                             "with a tokenizer.json: the first training counts long texts")
        return result
    totals = {"examples": 0, "windowed": 0, "truncated": 0, "windows": 0}
    task = project.task
    for page in project.fields_in_pages(CHUNK):
        for key, value in count_long_texts(task, tokenizer, page, settings).items():
            totals[key] += value
    return {**result, **totals}
