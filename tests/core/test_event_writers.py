"""Every event a job writes has the keys and value kinds its TypedDict declares, on the wire."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path

import pytest
import torch

from annotune.core import events as kinds
from annotune.core.events import Event, read_event
from annotune.core.formats.base import ImportRecord
from annotune.core.label_check import with_fold
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings
from annotune.core.training.config import TrainConfig
from annotune.core.training.job import run_training_inline
from annotune.core.training.learning_curve_job import _relay
from annotune.core.training.memory import BatchSizes
from annotune.core.training.progress import ProgressReport
from annotune.core.training.spec_job import _end_event

# Which TypedDict each job's events must match, by their "event" key
TRAINING = {"started": kinds.TrainingStarted, "progress": kinds.Progress,
            "precision": kinds.PrecisionChosen, "memory": kinds.MemoryReduced,
            "metrics": kinds.Metrics, "finished": kinds.TrainingFinished,
            "failed": kinds.Failed, "cancelled": kinds.Cancelled}
LABEL_CHECK = {**TRAINING, "started": kinds.LabelCheckStarted, "fold": kinds.FoldStarted,
               "finished": kinds.LabelCheckFinished}
LEARNING_CURVE = {**TRAINING, "started": kinds.CurveStarted,
                  "point_started": kinds.PointStarted, "point": kinds.Point,
                  "finished": kinds.CurveFinished}

TEXTS = ("good pizza 🍕", "awful 👨‍👩‍👧 trip", "Jose\u0301 loved it", "bad\r\nfilm",
         "東京 great", "مرحبا terrible", "שלום excellent", "the plot was poor")


def _fits(value: object, kind: object) -> bool:
    """Say whether a JSON value is of an annotated kind (ints count as floats, as in JSON)."""
    origin = typing.get_origin(kind)
    if kind is typing.Any:
        return True
    if kind is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(kind))
    if origin is list:
        (item,) = typing.get_args(kind)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typing.cast(type, kind))


def assert_declared(event: Event, declared: dict[str, type]) -> None:
    """Check an event after a round trip through its JSON line against its kind's TypedDict."""
    line = json.dumps(event, ensure_ascii=False, default=str)
    assert "\n" not in line
    read = read_event(line + "\n")
    assert read == json.loads(line) and list(read) == list(event)  # same keys, same order
    kind = declared[event["event"]]
    hints = typing.get_type_hints(kind)
    # read from the annotations: with postponed annotations Python 3.11's __required_keys__
    # counts the NotRequired keys as required
    extras = typing.get_type_hints(kind, include_extras=True)
    required = {key for key, hint in extras.items()
                if typing.get_origin(hint) is not typing.NotRequired}
    missing = required - set(read)
    unknown = set(read) - set(hints)
    assert not missing and not unknown, (event["event"], missing, unknown)
    wrong = {key: value for key, value in read.items() if not _fits(value, hints[key])}
    assert not wrong, (event["event"], wrong)


def test_the_training_job_writes_only_what_its_events_declare(tmp_path, tiny_base_model):
    path = tmp_path / "reviews.annotune"
    labels = ("neg", "pos")
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=labels, max_length=32),
                        base_model=str(tiny_base_model)) as project:
        project.add_examples([ImportRecord(fields={"text": f"{text} #{i}"},
                                           annotation={"label": labels[i % 2]}, line=i + 1)
                              for i, text in enumerate(TEXTS * 3)], source="train.csv")
        written: list[Event] = []
        config = TrainConfig(epochs=1, learning_rate=5e-3, batch_size=8, device="cpu")
        run_training_inline(project, config, written.append)
    assert [e["event"] for e in written][0] == "started"
    assert [e["event"] for e in written][-1] == "finished"
    assert {"progress", "metrics"} <= {e["event"] for e in written}
    for event in written:
        assert_declared(event, TRAINING)


def _loop_events() -> list[Event]:
    """Return one event of each kind the training loop writes, each from its own writer."""
    written: list[Event] = []
    report = ProgressReport(written.append, torch.device("cpu"), total_steps=2, interval=0.0)
    report.after_step(1, 1, torch.tensor(0.5), 8, lambda: 1e-3)
    BatchSizes(batch_size=8, micro_batch_size=8, eval_batch_size=16,
               emit=written.append).shrink("train")
    written.append(kinds.PrecisionChosen(event="precision", precision="fp32", probe=None,
                                         message=None))
    written.append(kinds.Metrics(event="metrics", epoch=1, metrics={"accuracy": 0.5},
                                 train_loss=0.7, validation_loss=None, main_metric="accuracy",
                                 peak_gpu_memory_gb=None))
    return written


def test_a_label_check_fold_tags_every_kind_the_loop_writes():
    for event in _loop_events():
        tagged = with_fold(event, 2, 5)
        assert_declared(tagged, LABEL_CHECK)
        assert (tagged.get("fold"), tagged.get("folds")) == (2, 5)
        assert "fold" not in event  # the loop's own event is left as it was


def test_a_learning_curve_point_passes_its_progress_on_with_the_share_done():
    passed: list[Event] = []
    relay = _relay(passed.append, [10, 30], index=1, fraction=0.75)
    for event in _loop_events():
        relay(event)
    assert [e["event"] for e in passed] == ["progress", "memory", "precision"]
    for event in passed:
        assert_declared(event, LEARNING_CURVE)
    progress = passed[0]
    assert progress["event"] == "progress"
    assert (progress.get("index"), progress.get("points"), progress.get("fraction"),
            progress.get("done")) == (1, 2, 0.75, 0.625)


def test_a_point_whose_resamples_never_scored_has_no_interval():
    """A metric undefined on every resample leaves the point's interval null on the wire."""
    point = kinds.Point(event="point", index=0, points=4, fraction=0.25, labels=12, score=0.5,
                        best_epoch=1, seconds=3.5, low=None, high=None)
    assert_declared(point, LEARNING_CURVE)


@pytest.mark.parametrize("status, error", [("finished", None), ("cancelled", None),
                                           ("failed", "the GPU fell off the bus 🍕")])
def test_a_prepared_run_ends_with_the_event_of_its_status(status, error):
    event = _end_event(status, run_dir=str(Path("runs") / "東京"), artifact_dir=None,
                       metrics={"accuracy": 0.9} if status == "finished" else None,
                       best_epoch=1, duration_s=2.5, error=error, log=None)
    assert event["event"] == status
    assert list(event)[:7] == ["event", "run_id", "run_dir", "artifact_dir", "metrics",
                               "best_epoch", "duration_s"]
    assert_declared(event, TRAINING)
