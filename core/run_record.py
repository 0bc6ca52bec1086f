"""Read and write run.json, the record a training keeps beside its checkpoint.

The training loop writes it; the export, the desktop's Runs view and the benchmarks read it.
One type, ``RunRecord``, is the contract between them. A record written by an older annotune
lacks the keys added since: they read as their defaults (no samples, no memory figures, …).
Keys this version does not know (written by a newer annotune) are kept in ``extra`` and
written back unchanged, so reading and writing a record never drops what another version put
there.

Standard library only: the Predictor-only install can import it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError

RUN_RECORD_NAME = "run.json"
_RETRAIN = "pass a run folder written by annotune train"

# JSON objects whose inner shape belongs to another owner (the task's settings and metrics,
# TrainConfig, the device description): the record checks only that they are objects.
JsonObject = dict[str, Any]


@dataclass
class RunRecord:
    """What one training run did: task, settings as trained, scores, history, device."""

    task: str
    status: str | None = None  # finished or cancelled (the loop writes it at its end)
    settings: JsonObject = field(default_factory=dict)  # TaskSettings.to_dict()
    config: JsonObject = field(default_factory=dict)  # TrainConfig.to_dict()
    base_model: str | None = None
    base_model_source: str | None = None
    main_metric: str | None = None
    best_epoch: int | None = None
    metrics: JsonObject = field(default_factory=dict)  # the best epoch's, with uncertainty
    history: list[JsonObject] = field(default_factory=list)  # one entry per epoch
    # with precision and precision_probe; records written by hand may name just the device
    device: JsonObject | str = field(default_factory=dict)
    memory: JsonObject = field(default_factory=dict)  # batch sizes and peak GPU memory
    duration_s: float | None = None
    steps: int | None = None
    train_examples: int | None = None
    validation_examples: int | None = None
    validation_split: JsonObject = field(default_factory=dict)
    long_texts: JsonObject | None = None
    annotune_version: str | None = None
    samples: list[JsonObject] = field(default_factory=list)  # validation fields for parity
    # keys written by another (newer) version, kept so a rewrite loses nothing
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object, where: str = RUN_RECORD_NAME) -> RunRecord:
        """Build a record from parsed run.json; missing keys get their defaults.

        Raises AnnotuneError naming the key when a known key holds the wrong kind of value.
        """
        if not isinstance(data, dict) or not isinstance(data.get("task"), str):
            raise AnnotuneError("run.json names no task", where=where, hint=_RETRAIN)
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                continue
            if value is None and known[name].default is not None:
                continue  # an explicit null where an object or list is expected: the default
            _check(name, value, where)
            values[name] = value
        extra = {key: value for key, value in data.items() if key not in known}
        return cls(**values, extra=extra)

    def to_json(self) -> JsonObject:
        """Return run.json's object: the known keys in their written order, then ``extra``."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**data, **{k: v for k, v in self.extra.items() if k not in data}}

    @classmethod
    def read(cls, run_dir: str | os.PathLike[str]) -> RunRecord:
        """Load a run folder's run.json, with a clear error when it is missing or damaged."""
        run_dir = Path(run_dir)
        path = run_dir / RUN_RECORD_NAME
        if not path.is_file():
            raise AnnotuneError("this folder is not a training run (run.json is missing)",
                                where=str(run_dir), hint=_RETRAIN)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AnnotuneError(f"run.json is not valid JSON ({error})", where=str(path),
                                hint=_RETRAIN) from None
        return cls.from_json(data, where=str(path))

    def write(self, run_dir: str | os.PathLike[str]) -> Path:
        """Write run.json into a run folder (replaced in one rename: never half a file)."""
        path = Path(run_dir) / RUN_RECORD_NAME
        partial = path.with_name(f".{RUN_RECORD_NAME}.partial")
        partial.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False),
                           encoding="utf-8")
        os.replace(partial, path)
        return path

    def precision(self) -> tuple[str | None, JsonObject | None]:
        """Return the precision the run trained in and the probe that chose it, if any."""
        device = self.device if isinstance(self.device, dict) else {}
        precision = device.get("precision")
        probe = device.get("precision_probe")
        return (precision if isinstance(precision, str) else None,
                probe if isinstance(probe, dict) else None)


# The JSON kind each known key must hold (None is allowed where the default is None).
_KINDS: Mapping[str, tuple[type, ...]] = {
    "task": (str,), "status": (str,), "settings": (dict,), "config": (dict,),
    "base_model": (str,), "base_model_source": (str,), "main_metric": (str,),
    "best_epoch": (int,), "metrics": (dict,), "history": (list,), "device": (dict, str),
    "memory": (dict,), "duration_s": (int, float), "steps": (int,), "train_examples": (int,),
    "validation_examples": (int,), "validation_split": (dict,), "long_texts": (dict,),
    "annotune_version": (str,), "samples": (list,),
}
_WORDS = {str: "a text", dict: "an object", list: "a list", int: "a number", float: "a number"}


def _check(name: str, value: object, where: str) -> None:
    kinds = _KINDS[name]
    if value is None or (isinstance(value, kinds) and not isinstance(value, bool)):
        return
    raise AnnotuneError(f"run.json's '{name}' is {type(value).__name__} {value!r:.60}, expected "
                        f"{_WORDS[kinds[0]]}", where=where,
                        hint="the run.json was edited or damaged; train the run again")
