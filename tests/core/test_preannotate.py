"""Pre-annotation: paging in id order, one transaction per page, the same rows as save_predictions.

The predictor here is a stand-in with the real text-classification task and deterministic
logits, so these tests check the store side quickly; tests/core/test_inference.py runs
pre-annotation with a real exported bundle.
"""

import hashlib

import numpy as np
import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.plugins import registry
from annotune.core.preannotate import preannotate, prediction_source
from annotune.core.store import Project, bulk
from annotune.core.tasks import Feature, TaskSettings

LABELS = ("neg", "pos", "mixed")
SETTINGS = TaskSettings(labels=LABELS)


class FakePredictor:
    """Predict like a Predictor: the task's own decode over logits drawn from each text."""

    def __init__(self, scale: float = 1.0):
        self.task = registry().task("text-classification")
        self.labels = LABELS
        self.scale = scale
        self.calls: list[int] = []

    def predict(self, items):
        items = list(items)
        self.calls.append(len(items))
        features, outputs = [], []
        for n, item in enumerate(items):
            digest = hashlib.sha256(item["text"].encode()).digest()
            logits = np.frombuffer(digest[:3], dtype=np.uint8) / 64.0 * self.scale
            features.append(Feature(example_index=n, input_ids=[1], token_type_ids=[0]))
            outputs.append({"logits": logits.astype(np.float32)})
        return self.task.decode(items, features, outputs, SETTINGS)


def make(path, count=11, labeled=(0, 4)):
    project = Project.create(path, task="text-classification", settings=SETTINGS)
    records = [ImportRecord(fields={"text": f"review {n}: {'fine' if n % 3 else 'bad'}"},
                            line=n + 1) for n in range(count)]
    for n in labeled:
        records[n].annotation = {"label": "pos"}
    project.add_examples(records, source="reviews.txt")
    return project


def stored(project):
    rows = project.db.execute("SELECT example_id, source, payload, score FROM predictions "
                              "ORDER BY example_id, source").fetchall()
    scores = project.db.execute("SELECT id, latest_score FROM examples ORDER BY id").fetchall()
    return rows, scores


@pytest.fixture
def project(tmp_path):
    with make(tmp_path / "p.annotune") as project:
        yield project


def test_preannotate_stores_the_rows_save_predictions_stores(tmp_path, monkeypatch):
    monkeypatch.setattr("annotune.core.preannotate.PAGE", 3)  # several pages, one partial
    predictor = FakePredictor()
    bundle = tmp_path / "bundle"
    with make(tmp_path / "a.annotune") as fast, make(tmp_path / "b.annotune") as plain:
        assert preannotate(fast, bundle, predictor=predictor) == 9
        assert predictor.calls == [3, 3, 3]
        unlabeled = plain.examples(status="unlabeled", limit=100)
        predictions = predictor.predict([example.fields for example in unlabeled])
        plain.save_predictions(prediction_source(bundle), [
            (example.id, prediction, predictor.task.prediction_score(prediction))
            for example, prediction in zip(unlabeled, predictions, strict=True)])
        assert stored(fast) == stored(plain)
        rows, scores = stored(fast)
        assert len(rows) == 9 and {row[0] for row in rows}.isdisjoint({1, 5})
        assert dict(scores)[1] is None and dict(scores)[2] == rows[0][3]


def test_latest_score_follows_the_newest_source(project, tmp_path):
    preannotate(project, tmp_path / "one", predictor=FakePredictor())
    preannotate(project, tmp_path / "two", predictor=FakePredictor(scale=3.0))
    newest = project.prediction(2, prediction_source(tmp_path / "two"))
    assert project.db.execute("SELECT latest_score FROM examples WHERE id = 2"
                              ).fetchone()[0] == newest.score
    assert project.prediction(2, prediction_source(tmp_path / "one")).score != newest.score
    assert project.db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 18


def test_examples_labeled_meanwhile_are_skipped_and_none_is_missed(project, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setattr("annotune.core.preannotate.PAGE", 2)
    labeled_later = []

    def label_ahead(done, total):
        if not labeled_later:  # the user labels examples on both sides of the next page
            for example_id in (3, 9):
                project.save_annotation(example_id, {"label": "neg"})
                labeled_later.append(example_id)
        return True

    count = preannotate(project, tmp_path / "b", predictor=FakePredictor(),
                        progress=label_ahead)
    predicted = {row[0] for row in project.db.execute("SELECT example_id FROM predictions")}
    # ids 2 and 3 were the first page; 9 was labeled before its page came
    assert predicted == {2, 3, 4, 6, 7, 8, 10, 11}
    assert count == 8


def test_only_unlabeled_false_predicts_every_example(project, tmp_path):
    assert preannotate(project, tmp_path / "b", predictor=FakePredictor(),
                       only_unlabeled=False) == 11
    assert project.prediction(1) is not None


def test_progress_false_stops_after_that_page(project, tmp_path, monkeypatch):
    monkeypatch.setattr("annotune.core.preannotate.PAGE", 4)
    seen = []
    count = preannotate(project, tmp_path / "b", predictor=FakePredictor(),
                        progress=lambda done, total: seen.append((done, total)) or False)
    assert (count, seen) == (4, [(4, 9)])
    assert project.db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 4


def test_timings_split_read_predict_and_write(project, tmp_path):
    timings = {"predict_s": 1.0}  # added to, so several runs can share one dict
    preannotate(project, tmp_path / "b", predictor=FakePredictor(), timings=timings)
    assert set(timings) == {"read_s", "predict_s", "write_s"}
    assert timings["predict_s"] > 1.0 and timings["read_s"] > 0 and timings["write_s"] > 0


def test_fields_page_walks_ids_in_order(project):
    ids, items = bulk.fields_page(project.db, None, 4)
    assert ids == [2, 3, 4, 6] and items[0] == {"text": "review 1: fine"}
    assert bulk.fields_page(project.db, 6, 100)[0] == [7, 8, 9, 10, 11]
    assert bulk.fields_page(project.db, 11, 100) == ([], [])
    assert bulk.fields_page(project.db, 0, 3, unlabeled=False)[0] == [1, 2, 3]


def test_a_page_with_an_unknown_example_is_refused_whole(project):
    prediction = {"label": "pos", "score": 0.9, "probabilities": {"pos": 0.9}}
    with pytest.raises(AnnotuneError, match="example 999"):
        bulk.save_predictions(project.db, "bundle:x", [2, 999], [prediction, prediction],
                              [0.9, 0.9])
    assert project.db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 0
    assert project.db.execute("SELECT latest_score FROM examples WHERE id = 2").fetchone()[0] \
        is None
    assert not project.db.conn.in_transaction


def test_scores_leave_the_search_index_and_its_trigger_as_they_were(project, tmp_path):
    triggers = project.db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                  "ORDER BY name").fetchall()
    index_rows = project.db.execute("SELECT COUNT(*) FROM examples_fts_data").fetchone()[0]
    preannotate(project, tmp_path / "b", predictor=FakePredictor(), only_unlabeled=False)
    assert project.db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                              "ORDER BY name").fetchall() == triggers
    assert project.db.execute("SELECT COUNT(*) FROM examples_fts_data").fetchone()[0] \
        == index_rows  # no re-indexed texts
    assert project.count(search="bad") == 4
    project.update_fields(3, {"text": "review 2: superb"})  # the trigger works again
    assert project.count(search="superb") == 1 and project.count(search="fine") == 6


def test_predicting_again_replaces_the_rows_of_that_source(project, tmp_path):
    preannotate(project, tmp_path / "b", predictor=FakePredictor())
    first = project.prediction(2)
    project.db.execute("PRAGMA synchronous = FULL")
    preannotate(project, tmp_path / "b", predictor=FakePredictor(scale=3.0))
    again = project.prediction(2)
    assert project.db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 9
    assert again.created_at > first.created_at and again.score != first.score
    assert project.db.execute("SELECT latest_score FROM examples WHERE id = 2"
                              ).fetchone()[0] == again.score
    assert project.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL, as it was
