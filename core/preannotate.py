"""Store a bundle's predictions for a project's examples (suggestions and uncertainty order).

The project is read a page at a time in id order and each page's predictions are written in
one short transaction, so a large project never sits in memory, an interruption keeps the
pages already done, and the desktop (which labels the same file while this runs on a worker
thread) never waits long for the write lock. Nearly all the time is onnxruntime's: reading a
page and storing its predictions cost well under 1% of predicting it (15 us against
milliseconds per example, bench/preannotate_speed.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.store import bulk

# Examples read, predicted and saved together. The Predictor sorts each page by length before
# batching, so a larger page pads less; 1,024 short texts are a few seconds of int8 inference
# on two cores, which is also how often progress is reported.
PAGE = 1024

Progress = Callable[[int, int], Any]


def prediction_source(bundle_dir: str | os.PathLike[str]) -> str:
    """Name the source under which a bundle's predictions are stored (its absolute folder)."""
    return f"bundle:{Path(bundle_dir).resolve()}"


def preannotate(project: Any, bundle_dir: str | os.PathLike[str], only_unlabeled: bool = True,
                batch_size: int = 64, progress: Progress | None = None,
                predictor: Any = None, timings: dict[str, float] | None = None) -> int:
    """Predict the project's examples with a bundle and store the predictions; return how many.

    ``progress(done, total)`` is called after each page; returning False from it stops after
    that page (the pages already stored stay). ``predictor`` reuses an already loaded
    Predictor of ``bundle_dir`` instead of loading it again. ``timings``, when given, receives
    the seconds spent reading the store, predicting and writing (``read_s``, ``predict_s``,
    ``write_s``). Examples labeled while this runs are left out of the pages still to come.
    """
    if predictor is None:
        from annotune.core.inference import Predictor

        predictor = Predictor(bundle_dir, batch_size=batch_size)
    task = predictor.task
    if task.name != project.task_name:
        raise AnnotuneError(f"the bundle predicts '{task.name}' but the project is a "
                            f"'{project.task_name}' project", where=str(bundle_dir),
                            hint="choose a bundle exported from this project's runs")
    unknown = [label for label in predictor.labels if label not in project.settings.labels]
    if unknown and project.settings.labels:
        raise AnnotuneError(f"the bundle predicts labels the project does not have: "
                            f"{', '.join(unknown)}", where=str(bundle_dir),
                            hint="add those labels to the project, or use a bundle trained "
                                 "on this project")

    total = project.count(status="unlabeled" if only_unlabeled else None)
    source = prediction_source(bundle_dir)
    score = task.prediction_score
    spent = {"read_s": 0.0, "predict_s": 0.0, "write_s": 0.0}
    clock = time.perf_counter
    done = 0
    after = None
    while done < total:
        started = clock()
        ids, items = bulk.fields_page(project.db, after, PAGE, unlabeled=only_unlabeled)
        if not ids:
            break
        after = ids[-1]
        read = clock()
        predictions = predictor.predict(items)
        predicted = clock()
        done += bulk.save_predictions(project.db, source, ids, predictions,
                                      [float(score(prediction)) for prediction in predictions])
        written = clock()
        spent["read_s"] += read - started
        spent["predict_s"] += predicted - read
        spent["write_s"] += written - predicted
        if progress is not None and progress(done, total) is False:
            break
    if timings is not None:
        for key, seconds in spent.items():
            timings[key] = timings.get(key, 0.0) + seconds
    return done
