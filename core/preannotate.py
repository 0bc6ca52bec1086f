"""Store a bundle's predictions for a project's examples (suggestions and uncertainty order).

The project is read and written a page at a time, each page's predictions in one transaction,
so a large project never sits in memory and an interruption keeps the pages already done.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError

PAGE = 1024  # examples read, predicted and saved together (fewer deep OFFSET queries)

Progress = Callable[[int, int], Any]


def prediction_source(bundle_dir: str | os.PathLike[str]) -> str:
    """Name the source under which a bundle's predictions are stored (its absolute folder)."""
    return f"bundle:{Path(bundle_dir).resolve()}"


def preannotate(project: Any, bundle_dir: str | os.PathLike[str], only_unlabeled: bool = True,
                batch_size: int = 64, progress: Progress | None = None,
                predictor: Any = None) -> int:
    """Predict the project's examples with a bundle and store the predictions; return how many.

    ``progress(done, total)`` is called after each page; returning False from it stops after
    that page (the pages already stored stay). ``predictor`` reuses an already loaded
    Predictor of ``bundle_dir`` instead of loading it again.
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

    status = "unlabeled" if only_unlabeled else None
    total = project.count(status=status)
    source = prediction_source(bundle_dir)
    done = 0
    offset = 0
    while done < total:
        page = project.examples(status=status, offset=offset, limit=PAGE)
        if not page:
            break
        # Storing a prediction never changes an example's label status, so offsets stay valid.
        offset += len(page)
        predictions = predictor.predict([example.fields for example in page])
        done += project.save_predictions(
            source, [(example.id, prediction, float(task.prediction_score(prediction)))
                     for example, prediction in zip(page, predictions, strict=True)])
        if progress is not None and progress(done, total) is False:
            break
    return done
