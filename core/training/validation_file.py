"""Write and read the validation examples a run keeps beside its run.json (validation.jsonl).

The training loop writes its whole validation split here, one JSON line
``{"fields", "annotation"}`` per example, so that a bundle exported later is scored on the
data the run was judged by. Plain JSON, no torch: the export reads it with the same code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError, where
from annotune.core.tasks import Task

VALIDATION_FILE = "validation.jsonl"

_HINT = ("train the run again, or delete the file to export without validation scores "
         "(int8 is then checked against fp32 on the run's samples only)")


@dataclass
class ValidationFile:
    """The validation examples read from a run: all of them, or an even spread of them."""

    path: Path
    examples: list[dict[str, str]]
    annotations: list[Any]
    total: int  # examples in the file


def write_validation(run_dir: Path, fields: Sequence[Mapping[str, str]],
                     annotations: Sequence[Any]) -> None:
    """Write a run's validation examples as JSON lines of {"fields", "annotation"}."""
    with (run_dir / VALIDATION_FILE).open("w", encoding="utf-8") as out:
        for example_fields, annotation in zip(fields, annotations, strict=True):
            out.write(json.dumps({"fields": dict(example_fields), "annotation": annotation},
                                 ensure_ascii=False) + "\n")


def read_validation(run_dir: Path, task: Task, limit: int | None = None
                    ) -> ValidationFile | None:
    """Read the run's validation examples (at most ``limit``, spread evenly); None without any.

    Larger files are thinned evenly, not cut at the front: the file follows the project's
    import order, which may be sorted by label.
    """
    path = run_dir / VALIDATION_FILE
    if not path.is_file():
        return None
    try:
        lines = [(n, line) for n, line in enumerate(
            # split at "\n" only: json.dumps leaves U+2028 and U+0085 inside texts as they are
            path.read_text(encoding="utf-8").split("\n"), 1) if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise AnnotuneError(f"the run's validation file cannot be read ({error})",
                            where=str(path), hint=_HINT) from None
    if not lines:
        return None
    total = len(lines)
    chosen = (lines if limit is None or total <= limit
              else [lines[i * total // limit] for i in range(limit)])
    examples, annotations = [], []
    for number, line in chosen:
        fields, annotation = _parse(line, task, where(path, number))
        examples.append(fields)
        annotations.append(annotation)
    return ValidationFile(path=path, examples=examples, annotations=annotations, total=total)


def _parse(line: str, task: Task, location: str) -> tuple[dict[str, str], Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise AnnotuneError(f"a validation line is not valid JSON ({error.msg})",
                            where=location, hint=_HINT) from None
    if not isinstance(record, Mapping) or not isinstance(record.get("fields"), Mapping) \
            or "annotation" not in record:
        raise AnnotuneError('a validation line is not {"fields": {...}, "annotation": ...}',
                            where=location, hint=_HINT)
    fields = record["fields"]
    missing = [name for name in task.fields if not isinstance(fields.get(name), str)]
    if missing:
        raise AnnotuneError(f"a validation example has no text in field '{missing[0]}'",
                            where=location, hint=_HINT)
    return {name: fields[name] for name in task.fields}, record["annotation"]
