"""Predict with an exported bundle using onnxruntime, tokenizers and numpy only (never torch).

    from annotune.core.inference import Predictor
    predictor = Predictor("my-bundle")
    predictor.predict(["great product", "broke after a day"])
    # [{"label": "pos", "score": 0.97, "probabilities": {...}}, ...]

Nothing in the bundle is opened before it is checked: the names in the manifest stay inside
the folder, every file matches its size and sha256, and the graph reads external data only
from listed files (core.bundle.verify_bundle). Start-up is kept short all the same (the
desktop and scripts create Predictors on demand): the checks run in a thread while
onnxruntime is imported, and the weights are then memory-mapped from the bundle's external
data file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

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
from annotune.core.formats.files import SURROGATE_HINT, lone_surrogate, surrogate_message
from annotune.core.runtime import DEVICES, import_onnxruntime, open_session
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
        # The checks run in a thread (hashlib and file reads let go of the GIL) while this
        # one imports onnxruntime and finds the task; no bundle file is opened before they
        # pass. A damaged file explains a failure better than its symptom, so it is raised
        # first whatever else went wrong.
        checker = _Verification(self.bundle_dir)
        try:
            manifest = bundle_files.read_manifest(self.bundle_dir)
            self.task: Task = plugins.registry().task(manifest["task"])
            self.settings: TaskSettings = self.task.settings_from_dict(
                manifest["settings"], where=str(self.bundle_dir / bundle_files.MANIFEST_NAME))
            import_onnxruntime()
        except BaseException:
            checker.result()
            raise
        # The tokenizer is small and checked first: it loads while the weights are hashed.
        self.tokenizer = prepare_tokenizer(checker.file(str(manifest["tokenizer"])))
        self._pad_token_id = pad_id(self.tokenizer)
        self.manifest: bundle_files.Manifest = checker.result()
        self.session = open_session(checker.file(str(self.manifest["model"])), threads, device)
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
            example = {fields[0]: item}
        elif isinstance(item, Mapping):
            missing = [name for name in fields if not isinstance(item.get(name), str)]
            if missing:
                raise AnnotuneError(f"item {n} has no text in field '{missing[0]}'",
                                    hint=f"the {self.task.title} task reads {', '.join(fields)}")
            example = {name: item[name] for name in fields}
            for name in getattr(self.task, "optional_fields", ()):  # NER: "tokens"
                if name in item:
                    example[name] = item[name]
        else:
            raise AnnotuneError(f"item {n} is a {type(item).__name__}, expected a text or a "
                                "mapping of fields")
        for name, text in example.items():
            if not isinstance(text, str):
                continue  # optional fields such as NER's tokens are checked by the task
            # The tokenizer takes only real characters; half a surrogate pair makes it raise
            # a TypeError that names neither the item nor the character.
            index = lone_surrogate(text)
            if index is not None:
                raise AnnotuneError(f"item {n}, field '{name}': {surrogate_message(text, index)}",
                                    hint=SURROGATE_HINT)
        return example


class _Verification(threading.Thread):
    """Check a bundle in the background; callers wait for one file, or for all of them.

    ``file`` returns a file's path once that file passed its checks, ``result`` the manifest
    once every check passed; both re-raise the first failure in the caller's thread.
    """

    def __init__(self, folder: Path):
        super().__init__(name="annotune-verify-bundle", daemon=True)
        self._folder = folder
        self._manifest: bundle_files.Manifest | None = None
        self._error: BaseException | None = None
        self._passed: set[str] = set()
        self._changed = threading.Condition()
        self.start()

    def run(self) -> None:
        try:
            manifest = bundle_files.verify_bundle(self._folder, checked=self._passes)
        except BaseException as error:  # handed to the caller's thread by file() and result()
            manifest, self._error = None, error
        with self._changed:
            self._manifest = manifest
            self._changed.notify_all()

    def _passes(self, name: str) -> None:
        with self._changed:
            self._passed.add(name)
            self._changed.notify_all()

    def file(self, name: str) -> Path:
        """Wait until the file ``name`` passed its checks; return its path."""
        with self._changed:
            # Only names that passed are ever added, so an odd name just waits for the error.
            self._changed.wait_for(lambda: name in self._passed or self._manifest is not None
                                   or self._error is not None)
            if self._error is not None:
                raise self._error
            if name not in self._passed:
                raise AnnotuneError(f"the bundle's manifest changed while it was read: "
                                    f"'{name}' is no longer listed", where=str(self._folder),
                                    hint="load the bundle again")
        return self._folder / name

    def result(self) -> bundle_files.Manifest:
        """Wait for every check; return the manifest they were made against."""
        self.join()
        if self._error is not None:
            raise self._error
        assert self._manifest is not None
        return self._manifest
