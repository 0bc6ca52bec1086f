"""Read the training run an export starts from: run.json, its checkpoint, samples to check.

Everything here is read and encoded before the export writes a file, so a run that cannot be
exported is refused without touching the target folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotune.core import plugins
from annotune.core.errors import AnnotuneError
from annotune.core.export.validation import ValidationSet
from annotune.core.features import pad_id, prepare_tokenizer
from annotune.core.run_record import RunRecord
from annotune.core.tasks import Feature, Task, TaskSettings

FALLBACK_TEXTS = (
    "The delivery arrived two days late and the box was damaged.",
    "Great value.",
    "I would not recommend this to anyone who needs it to work on the first try, "
    "because the setup took an entire afternoon and support never answered my emails.",
    "Maria Lopez moved from Lisbon to Berlin in 2019 to join Siemens.",
    "ok",
    "What time does the museum open on Sundays, and is the entry free for students?",
)


def run_folder(path: Path) -> Path:
    """Return the run folder for a run folder or its model/ checkpoint (what runs record)."""
    if not (path / "run.json").is_file() and (path.parent / "run.json").is_file():
        return path.parent
    return path


def read_run(run_dir: Path) -> dict[str, Any]:
    """Load run.json and check the checkpoint folder beside it."""
    run = RunRecord.read(run_dir).to_json()  # an older run's missing keys: their defaults
    model_dir = run_dir / "model"
    if not (model_dir / "config.json").is_file():
        raise AnnotuneError("the run has no saved model (model/config.json is missing)",
                            where=str(run_dir),
                            hint="the run may have been cancelled before its first epoch "
                                 "finished; train again")
    if not (model_dir / "tokenizer.json").is_file():
        raise AnnotuneError("the run's model has no tokenizer.json (a fast tokenizer is needed)",
                            where=str(model_dir),
                            hint="train from a base model that ships tokenizer.json")
    return run


def parity_examples(task: Task, run: Mapping[str, Any],
                    parity_texts: Sequence[str | Mapping[str, str]] | None
                    ) -> list[dict[str, str]]:
    """Return the examples the parity check runs: given texts, the run's samples, or stock text."""
    items: Sequence[Any] = parity_texts or run.get("samples") or ()
    examples = []
    for n, item in enumerate(items):
        if isinstance(item, str):
            examples.append({name: item for name in task.fields})
        elif isinstance(item, Mapping):
            examples.append({name: str(item.get(name, "")) for name in task.fields})
        else:
            raise AnnotuneError(f"parity sample {n} is a {type(item).__name__}, expected a text "
                                "or a mapping of fields")
    if not examples:
        # No samples recorded (an old run): stock sentences still exercise lengths and padding.
        examples = [{name: text for name in task.fields} for text in FALLBACK_TEXTS]
    return examples


@dataclass(frozen=True)
class TrainedRun:
    """A run ready to export: its record, task, tokenizer, and the examples that check it."""

    run_dir: Path
    run: Mapping[str, Any]  # run.json
    task: Task
    settings: TaskSettings
    tokenizer: Any
    pad_token_id: int
    examples: list[dict[str, str]]  # the parity samples
    features: list[Feature]  # their encoding (long texts give several windows)
    validation: ValidationSet | None  # the run's validation.jsonl, encoded; None: none kept

    @property
    def model_dir(self) -> Path:
        """Return the run's checkpoint folder (transformers format)."""
        return self.run_dir / "model"

    @classmethod
    def load(cls, run_dir: Path, run: Mapping[str, Any],
             parity_texts: Sequence[str | Mapping[str, str]] | None = None) -> TrainedRun:
        """Load the tokenizer of a run (``run``: its read_run record); encode what checks it."""
        task = plugins.registry().task(run["task"])
        settings = task.settings_from_dict(run.get("settings"), where=str(run_dir / "run.json"))
        tokenizer = prepare_tokenizer(run_dir / "model" / "tokenizer.json")
        examples = parity_examples(task, run, parity_texts)
        features = task.encode(tokenizer, examples, None, settings)
        if not features:
            raise AnnotuneError("the parity samples produced no model input", where=str(run_dir),
                                hint="pass some non-empty parity texts")
        validation = ValidationSet.read(run_dir, task)
        if validation is not None:
            validation.encode(task, tokenizer, settings)
        return cls(run_dir=run_dir, run=run, task=task, settings=settings, tokenizer=tokenizer,
                   pad_token_id=pad_id(tokenizer), examples=examples, features=features,
                   validation=validation)
