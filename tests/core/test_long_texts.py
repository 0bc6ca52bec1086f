"""Texts longer than one model window: counted everywhere a user looks, never cut silently."""

from __future__ import annotations

import json

from annotune.core import cli
from annotune.core.export.report import ExportReport, long_text_line
from annotune.core.export.validation import ValidationReport
from annotune.core.formats.base import ImportRecord
from annotune.core.long_texts import count_for_training, count_long_texts, describe
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings
from annotune.plugins.pair_classification import PairClassificationTask
from annotune.plugins.question_answering import QuestionAnsweringTask
from annotune.plugins.text_classification import TextClassificationTask
from annotune.plugins.token_classification import TokenClassificationTask

LONG = "José 🍕 loved the 👨‍👩‍👧 film, 漢字 مرحبا بالعالم שלום עולם.\r\n" * 10
SHORT = "Tiny 🍕."


def test_classification_counts_texts_read_in_windows(tokenizer):
    settings = TaskSettings(labels=("neg", "pos"), max_length=32)
    counts = count_long_texts(TextClassificationTask(), tokenizer,
                              [{"text": LONG}, {"text": SHORT}, {"text": LONG + LONG}], settings)
    assert counts["examples"] == 3 and counts["windowed"] == 2 and counts["truncated"] == 0
    assert counts["windows"] > 3


def test_a_pair_whose_shorter_text_overflows_half_a_window_counts_as_cut(tokenizer):
    settings = TaskSettings(labels=("yes", "no"), max_length=32)
    counts = count_long_texts(PairClassificationTask(), tokenizer,
                              [{"text": LONG, "text_pair": LONG},
                               {"text": LONG, "text_pair": SHORT}], settings)
    assert (counts["windowed"], counts["truncated"]) == (2, 1)


def test_question_answering_counts_cut_questions_and_windowed_contexts(tokenizer):
    settings = QuestionAnsweringTask().default_settings().with_(max_length=64, stride=16)
    question = "Which 🍕 " + "very " * 80 + "long question is this?"
    counts = count_long_texts(QuestionAnsweringTask(), tokenizer,
                              [{"context": LONG, "question": "Who?"},
                               {"context": SHORT, "question": question}], settings)
    assert (counts["windowed"], counts["truncated"]) == (1, 1)


def test_entity_texts_are_windowed_never_cut(tokenizer):
    settings = TaskSettings(labels=("PER",), max_length=24)
    counts = count_long_texts(TokenClassificationTask(), tokenizer,
                              [{"text": LONG}, {"text": SHORT}], settings)
    assert (counts["windowed"], counts["truncated"]) == (1, 0)


def test_the_description_says_what_happens_to_long_texts():
    assert describe({"examples": 10, "windowed": 0, "truncated": 0}, 128) is None
    line = describe({"examples": 2000, "windowed": 312, "truncated": 4}, 128)
    assert line.startswith("312 of 2,000 texts are longer than 128 tokens")
    assert "4 of 2,000 lose text" in line


def test_training_counts_need_a_local_tokenizer(tmp_path):
    task = TextClassificationTask()
    settings = TaskSettings(labels=("neg", "pos"))
    counts = count_for_training(task, settings, None, 16, [{"text": LONG}, {"text": SHORT}])
    assert counts == {"max_length": 16, "examples": 2, "windowed": 1, "truncated": 0,
                      "windows": counts["windows"]}
    assert count_for_training(task, settings, "some-org/hub-model", None, [{"text": LONG}]) \
        is None


def long_project(tmp_path) -> Project:
    project = Project.create(tmp_path / "p.annotune", task="text-classification",
                             settings=TaskSettings(labels=("neg", "pos"), max_length=32))
    records = [ImportRecord(fields={"text": text}, line=n + 1,
                            annotation={"label": "pos"} if n == 0 else None)
               for n, text in enumerate([LONG, SHORT, LONG + " again", "short too"])]
    project.add_examples(records, source="reviews.txt")
    return project


def test_project_stats_count_long_texts_only_when_asked(tmp_path):
    project = long_project(tmp_path)
    assert "long_texts" not in project.stats()  # views that refresh often stay cheap
    counts = project.stats(long_texts=True)["long_texts"]
    assert counts["examples"] == 4 and counts["windowed"] == 2 and counts["truncated"] == 0
    assert counts["max_length"] == 32


def test_annotune_stats_prints_the_counts_and_a_note(tmp_path, capsys):
    project = long_project(tmp_path)
    project.close()
    assert cli.main(["stats", str(tmp_path / "p.annotune")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["long_texts"]["windowed"] == 2
    assert "2 of 4 texts are longer than 32 tokens" in err


def test_the_export_report_says_how_many_validation_texts_were_windowed(tmp_path):
    validation = ValidationReport(metric="f1", examples=200, available=200, fp32=0.84,
                                  long_texts={"max_length": 128, "examples": 200,
                                              "windowed": 37, "truncated": 0,
                                              "windows": 250})
    report = ExportReport(bundle_dir=tmp_path, model_path=tmp_path / "model.onnx", files={},
                          task="text-classification", parity_max_diff=0.0,
                          parity_per_output={}, parity_examples=1, parity_features=1,
                          validation=validation)
    assert "long texts  37 of 200 texts are longer than 128 tokens" in str(report)
    assert report.to_dict()["validation"]["long_texts"]["windowed"] == 37
    none = ValidationReport(metric="f1", examples=5, available=5, fp32=1.0,
                            long_texts={"max_length": 64, "examples": 5, "windowed": 0,
                                        "truncated": 0, "windows": 5})
    assert long_text_line(none) == "none of the 5 validation texts is longer than 64 tokens"
