"""A training run tells the truth about its validation: groups, uncertainty, long texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotune.core import cli
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings
from annotune.core.training.config import TrainConfig
from annotune.core.training.job import run_training_inline

CITIES = ("Berlin", "Paris", "Kyoto", "Cairo", "Lima", "Oslo")


def conll_records(documents: int, sentences: int) -> list[ImportRecord]:
    """Sentences as the CoNLL importer stores them: -DOCSTART- in the meta of each first one."""
    out = []
    for d in range(documents):
        for s in range(sentences):
            city = CITIES[(d + s) % len(CITIES)]
            words = ["Story", str(d), "line", str(s), "in", city, "🍕", "漢字", "مرحبا"]
            if d == 0 and s == 0:  # one sentence longer than a window
                words += ["and", "more", "words"] * 20
            text = " ".join(words)
            start = text.index(city)
            meta = {"format": "conll", "scheme": "BIO", "separator": " "}
            if s == 0:
                meta["before"] = ["-DOCSTART- -X- -X- O"]
            out.append(ImportRecord(fields={"text": text},
                                    annotation={"spans": [{"start": start,
                                                           "end": start + len(city),
                                                           "label": "LOC"}]},
                                    line=len(out) * 3 + 1, meta=meta))
    return out


@pytest.fixture
def ner_project(tmp_path, tiny_base_model) -> Path:
    path = tmp_path / "news.annotune"
    with Project.create(path, task="token-classification",
                        settings=TaskSettings(labels=("LOC",), max_length=32),
                        base_model=str(tiny_base_model)) as project:
        project.add_examples(conll_records(12, 5), source="train.txt")
    return path


def test_a_run_keeps_documents_whole_and_records_uncertainty_and_long_texts(ner_project):
    events = []
    config = TrainConfig(epochs=2, learning_rate=5e-3, batch_size=8, device="cpu",
                         early_stopping_patience=0)
    with Project.open(ner_project) as project:
        result = run_training_inline(project, config, events.append)
    started = next(e for e in events if e["event"] == "started")
    assert started["long_texts"]["windowed"] == 1 and started["long_texts"]["max_length"] == 32

    run_dir = Path(started["run_dir"])
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    split = record["validation_split"]
    assert split["grouped_by"] == "document" and split["fallback"] is None
    assert split["validation_examples_sharing_a_group_with_training"] == 0
    held = {json.loads(line)["fields"]["text"].split()[1]
            for line in (run_dir / "validation.jsonl").read_text(encoding="utf-8").splitlines()}
    assert len(held) >= 1 and record["validation_examples"] == 5 * len(held)

    spread = record["metrics"]["uncertainty"]
    assert spread["metric"] == "f1" and spread["examples"] == record["validation_examples"]
    assert spread["low"] <= record["metrics"]["f1"] <= spread["high"]
    assert [h["kept"] for h in record["history"]].count(True) >= 1
    assert all(h["why"] for h in record["history"])
    assert record["long_texts"]["train"]["windowed"] + \
        record["long_texts"]["validation"]["windowed"] == 1
    assert result.metrics["uncertainty"] == spread


def test_annotune_runs_shows_the_main_metric_with_its_standard_error(tmp_path, capsys):
    path = tmp_path / "p.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as project:
        run = project.create_run({"epochs": 3}, device="cpu")
        project.finish_run(run, "finished", metrics={
            "f1": 0.5312, "accuracy": 0.5341,
            "uncertainty": {"metric": "f1", "standard_error": 0.0317, "low": 0.47,
                            "high": 0.59, "examples": 249, "draws": 200,
                            "method": "bootstrap"}})
    assert cli.main(["runs", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0.5312 ±0.0317" in out and "0.5341 ±" not in out
    assert cli.main(["runs", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["metrics"]["uncertainty"]["examples"] == 249


def test_the_finished_line_states_the_interval():
    line = cli.uncertainty_line({"f1": 0.5312, "uncertainty": {
        "metric": "f1", "standard_error": 0.0317, "low": 0.47, "high": 0.59, "examples": 249}})
    assert line == ("validation f1 0.5312 ±0.0317 (95 % interval 0.4700–0.5900, "
                    "249 validation examples)")
