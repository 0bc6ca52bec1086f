"""run.json: one reader and writer, old records read with defaults, nothing another version
wrote is dropped, and a damaged record is refused naming the key."""

import json

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.export import read_run
from annotune.core.run_record import RunRecord

# A run.json as an early version wrote it: no samples, memory, steps, validation split, long
# texts, base model source or main metric.
OLD_RECORD = {
    "task": "text-classification", "status": "finished",
    "settings": {"labels": ["neg", "pos"], "max_length": 128},
    "config": {"epochs": 2, "learning_rate": 3e-5},
    "base_model": "all-MiniLM-L6-v2", "best_epoch": 2,
    "metrics": {"accuracy": 0.9, "macro_f1": 0.88},
    "history": [{"epoch": 1, "train_loss": 0.6, "metrics": {"accuracy": 0.8}},
                {"epoch": 2, "train_loss": 0.3, "metrics": {"accuracy": 0.9}}],
    "device": {"device": "cpu", "precision": "fp32"}, "duration_s": 12.5,
    "train_examples": 40, "validation_examples": 10, "annotune_version": "0.0.9",
}

TEXTS = ["🍕 great", "👨‍👩‍👧 family trip", "line one\r\nline two", "東京の夜",
         "Jose\u0301 liked it", "مرحبا بالعالم", "שלום עולם"]


def _run_folder(tmp_path, record):
    folder = tmp_path / "run"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text("{}", encoding="utf-8")
    (folder / "model" / "tokenizer.json").write_text("{}", encoding="utf-8")
    (folder / "run.json").write_text(json.dumps(record), encoding="utf-8")
    return folder


def test_an_old_run_json_reads_with_defaults_for_the_keys_added_since(tmp_path):
    record = RunRecord.read(_run_folder(tmp_path, OLD_RECORD))
    assert record.task == "text-classification" and record.best_epoch == 2
    assert record.metrics == OLD_RECORD["metrics"] and record.history == OLD_RECORD["history"]
    assert record.samples == [] and record.memory == {} and record.validation_split == {}
    assert record.steps is None and record.main_metric is None and record.long_texts is None
    assert record.precision() == ("fp32", None)
    assert RunRecord.from_json({**OLD_RECORD, "device": "cpu"}).precision() == (None, None)
    run = read_run(tmp_path / "run")  # what the export reads
    assert run["settings"] == OLD_RECORD["settings"] and run["samples"] == []


def test_keys_written_by_a_newer_version_are_kept_when_a_record_is_written_again(tmp_path):
    newer = {**OLD_RECORD, "calibration": {"temperature": 1.3}, "steps": 20}
    record = RunRecord.from_json(newer)
    assert record.extra == {"calibration": {"temperature": 1.3}}
    record.write(tmp_path)
    assert json.loads((tmp_path / "run.json").read_text(encoding="utf-8")) == {
        **RunRecord.from_json(OLD_RECORD).to_json(), **newer}


def test_a_written_record_is_the_json_the_training_loop_always_wrote(tmp_path):
    samples = [{"text": text} for text in TEXTS]
    record = RunRecord(task="text-classification", metrics={"accuracy": 1.0}, samples=samples)
    path = record.write(tmp_path)
    data = path.read_bytes().decode("utf-8")
    assert json.loads(data) == record.to_json()
    assert list(json.loads(data))[:3] == ["task", "status", "settings"]  # the old key order
    for text in TEXTS:  # kept as written, not escaped, every character exact
        assert json.dumps(text, ensure_ascii=False) in data
    assert RunRecord.read(tmp_path).samples == samples
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no partial file left


@pytest.mark.parametrize(("key", "value"), [("history", "none"), ("metrics", [0.9]),
                                            ("best_epoch", "2"), ("samples", {"text": "a"}),
                                            ("duration_s", True)])
def test_a_value_of_the_wrong_kind_is_refused_naming_its_key(tmp_path, key, value):
    folder = _run_folder(tmp_path, {**OLD_RECORD, key: value})
    with pytest.raises(AnnotuneError, match=f"run.json's '{key}' is") as error:
        read_run(folder)
    assert str(folder / "run.json") in str(error.value)


def test_a_record_without_a_task_or_not_json_is_refused(tmp_path):
    folder = _run_folder(tmp_path, {"status": "finished"})
    with pytest.raises(AnnotuneError, match="names no task"):
        RunRecord.read(folder)
    (folder / "run.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(AnnotuneError, match="not valid JSON"):
        RunRecord.read(folder)
