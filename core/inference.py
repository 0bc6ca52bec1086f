"""Predict with an exported bundle using onnxruntime, tokenizers and numpy only (never torch).

    from annotune.core.inference import Predictor
    predictor = Predictor("my-bundle")
    predictor.predict(["great product", "broke after a day"])
    # [{"label": "pos", "score": 0.97, "probabilities": {...}}, ...]

Start-up is kept short (the desktop and scripts create Predictors on demand): onnxruntime is
imported when the first Predictor is built, its weights are memory-mapped from the bundle's
external data file, and checksums are verified in a thread while the session opens.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annotune.core import bundle as bundle_files
from annotune.core import plugins
from annotune.core.errors import AnnotuneError
from annotune.core.features import (
    PREDICT_BATCH_SIZE,
    collate,
    length_sorted_batches,
    pad_id,
    prepare_tokenizer,
    split_outputs,
)
from annotune.core.runtime import DEVICES, open_session
from annotune.core.tasks import Prediction, Task, TaskSettings


class Predictor:
    """Load a bundle once, then turn texts (or field dicts) into the task's predictions.

    ``threads`` defaults to the number of physical cores. ``device`` is "cpu" (default),
    "cuda" (refused when onnxruntime has no CUDA provider) or "auto" (CUDA when available).
    """

    def __init__(self, bundle_dir: str | os.PathLike[str], threads: int | None = None,
                 batch_size: int = PREDICT_BATCH_SIZE, device: str = "cpu"):
        if batch_size < 1:
            raise AnnotuneError(f"batch size {batch_size} must be at least 1")
        if device not in DEVICES:
            raise AnnotuneError(f"unknown device '{device}'", hint=f"use one of {DEVICES}")
        self.bundle_dir = Path(bundle_dir)
        self.batch_size = batch_size
        manifest = bundle_files.read_manifest(self.bundle_dir)
        model_file = self.bundle_dir / str(manifest["model"])
        # Checksums are computed in a thread (hashlib lets go of the GIL) while onnxruntime
        # opens the session; a mismatch is still raised before the Predictor is returned.
        checker = _Verification(self.bundle_dir)
        try:
            self.task: Task = plugins.registry().task(manifest["task"])
            self.settings = TaskSettings.from_dict(manifest["settings"])
            self.tokenizer = prepare_tokenizer(self.bundle_dir / str(manifest["tokenizer"]))
            self._pad_token_id = pad_id(self.tokenizer)
            self.session = open_session(model_file, threads, device)
        except BaseException:
            checker.result()  # a damaged file explains a failure better than its symptom
            raise
        self.manifest: dict[str, Any] = checker.result()
        self.providers: list[str] = list(self.session.get_providers())
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._outputs = list(self.task.output_names)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.settings.labels)

    def __repr__(self) -> str:
        return (f"Predictor({str(self.bundle_dir)!r}, task={self.task.name!r}, "
                f"providers={self.providers})")

    # -- predicting --------------------------------------------------------------------------
    def predict(self, items: Iterable[str | Mapping[str, str]]) -> list[Prediction]:
        """Return one prediction per item, in input order.

        Items are texts (tasks with one text field) or mappings holding every field the task
        reads (e.g. ``{"context": ..., "question": ...}``), and any of its ``optional_fields``
        (NER: ``{"text": ..., "tokens": [...]}`` decodes to whole given tokens).
        """
        examples = [self._example(n, item) for n, item in enumerate(items)]
        if not examples:
            return []
        features = self.task.encode(self.tokenizer, examples, None, self.settings)
        outputs: list[dict[str, np.ndarray]] = [{} for _ in features]
        # Similar lengths share a batch, each padded only to its own longest member.
        for indices in length_sorted_batches(features, self.batch_size):
            batch = [features[i] for i in indices]
            arrays = collate(batch, self._pad_token_id)
            values = self.session.run(self._outputs, {name: arrays[name] for name in self._inputs})
            pieces = split_outputs(dict(zip(self._outputs, values, strict=True)), batch,
                                   self.task.sequence_outputs)
            for index, piece in zip(indices, pieces, strict=True):
                outputs[index] = piece
        return self.task.decode(examples, features, outputs, self.settings)

    def predict_texts(self, texts: Iterable[str]) -> list[Prediction]:
        """Predict plain texts (single-text tasks such as classification and NER)."""
        return self.predict(list(texts))

    def predict_one(self, item: str | Mapping[str, str]) -> Prediction:
        """Predict a single text or field mapping."""
        return self.predict([item])[0]

    def score(self, prediction: Prediction) -> float:
        """Return the task's confidence in [0, 1] for a prediction (for uncertainty order)."""
        return float(self.task.prediction_score(prediction))

    def _example(self, n: int, item: str | Mapping[str, str]) -> dict[str, str]:
        fields: Sequence[str] = self.task.fields
        if isinstance(item, str):
            if len(fields) != 1:
                raise AnnotuneError(
                    f"item {n} is a plain text, but the {self.task.title} task reads "
                    f"{len(fields)} fields", hint=f"pass a mapping with {', '.join(fields)}")
            return {fields[0]: item}
        if isinstance(item, Mapping):
            missing = [name for name in fields if not isinstance(item.get(name), str)]
            if missing:
                raise AnnotuneError(f"item {n} has no text in field '{missing[0]}'",
                                    hint=f"the {self.task.title} task reads {', '.join(fields)}")
            example = {name: item[name] for name in fields}
            for name in getattr(self.task, "optional_fields", ()):  # NER: "tokens"
                if name in item:
                    example[name] = item[name]
            return example
        raise AnnotuneError(f"item {n} is a {type(item).__name__}, expected a text or a mapping "
                            "of fields")


class _Verification(threading.Thread):
    """Check a bundle's checksums in the background; ``result`` waits and re-raises failures."""

    def __init__(self, folder: Path):
        super().__init__(name="annotune-verify-bundle", daemon=True)
        self._folder = folder
        self._manifest: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._manifest = bundle_files.verify_bundle(self._folder)
        except BaseException as error:  # handed to the caller's thread by result()
            self._error = error

    def result(self) -> dict[str, Any]:
        self.join()
        if self._error is not None:
            raise self._error
        assert self._manifest is not None
        return self._manifest
