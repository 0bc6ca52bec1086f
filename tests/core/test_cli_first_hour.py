"""What a new user meets on the command line: defaults in every --help, a readable runs table,
the export report's three plain lines first."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from annotune.core import cli
from annotune.core.export.report import ExportReport
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {"annotune": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _takes_a_value(action: argparse.Action) -> bool:
    if action.nargs == 0 or isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
        return False
    return bool(action.option_strings) or (action.nargs == "?" and action.default is not None)


@pytest.mark.parametrize("command", sorted(_subparsers(cli.build_parser())))
def test_every_option_shows_its_default_in_help(command):
    parser = _subparsers(cli.build_parser())[command]
    formatter = parser._get_formatter()
    missing = [action.option_strings or action.dest for action in parser._actions
               if _takes_a_value(action)
               and "default" not in formatter._expand_help(action)]
    assert missing == [], f"annotune {command} --help shows no default for {missing}"
    assert "(default:" in parser.format_help() or not any(
        _takes_a_value(a) for a in parser._actions)


def test_train_help_shows_the_training_defaults(capsys):
    from annotune.core.training.config import TrainConfig

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = TrainConfig()
    assert f"(default: {defaults.epochs})" in text
    assert f"(default: {defaults.learning_rate})" in text
    assert f"(default: {defaults.batch_size})" in text


@pytest.fixture
def project_with_runs(tmp_path):
    path = tmp_path / "people 🍕.annotune"
    project = Project.create(path, task="token-classification",
                             settings=TaskSettings(labels=("PER", "LOC")))
    first = project.create_run({"epochs": 3}, "cpu (Intel Xeon, fp32)")
    project.finish_run(first, "finished", metrics={
        "precision": 0.5, "recall": 0.75, "f1": 0.6, "true_positives": 12, "predicted": 24,
        "gold": 16, "per_type": {"PER": {"f1": 0.6}}})
    second = project.create_run({"epochs": 10}, "cuda (NVIDIA H100, bf16)")
    project.finish_run(second, "failed", error="the GPU ran out of memory")
    project.close()
    return path


def test_runs_prints_an_aligned_table_with_whole_numbers(project_with_runs, capsys):
    assert cli.main(["runs", str(project_with_runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, first, second = lines[:3]
    assert header.split()[:5] == ["Run", "Status", "Started", "Device", "Epochs"]
    assert "F1" in header and "Entities labeled" in header
    # the main metric comes first and its figures end where its title ends
    f1_end = header.index("F1") + len("F1")
    assert first[:f1_end].endswith("0.6000")
    assert " 16 " in first and "16.0000" not in first  # a count stays a whole number
    assert second.split()[1] == "failed" and second.split()[4] == "cuda"  # date, time
    assert lines[3] == "(1 more metric with --json)"
    assert lines[-1] == "run 2 failed: the GPU ran out of memory"


def test_runs_json_keeps_every_metric(project_with_runs, capsys):
    assert cli.main(["runs", str(project_with_runs), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["metrics"]["true_positives"] == 12 and runs[1]["status"] == "failed"


def test_runs_without_any_run_says_how_to_train(tmp_path, capsys):
    path = tmp_path / "empty.annotune"
    Project.create(path, task="text-classification",
                   settings=TaskSettings(labels=("a", "b"))).close()
    assert cli.main(["runs", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"no runs yet: annotune train {path}"


def test_export_prints_size_speed_and_accuracy_first(tmp_path, capsys, monkeypatch):
    report = ExportReport(
        bundle_dir=tmp_path / "bundle", model_path=tmp_path / "bundle" / "model.onnx",
        files={"model.onnx": 2**20, "model.onnx.data": 21 * 2**20}, task="text-classification",
        parity_max_diff=1e-6, parity_per_output={"logits": 1e-6}, parity_examples=4,
        parity_features=4, latency_ms=2.5)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr("annotune.core.export.export_run", lambda *a, **k: report)
    assert cli.main(["export", str(run), str(tmp_path / "bundle")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["Size", "Speed", "Accuracy"]
    assert lines[3] == "" and lines[4].startswith("bundle ")
    assert Path(lines[4].split()[-1]) == tmp_path / "bundle"


def test_every_training_setting_is_an_option_of_train_and_reaches_the_config():
    """The command line offered 8 of TrainConfig's 18 settings; the train panel offers all."""
    from dataclasses import fields

    from annotune.core.training.config import TrainConfig

    parser = _subparsers(cli.build_parser())["train"]
    given = ["p.annotune", "--gradient-accumulation", "4", "--warmup-ratio", "0.2",
             "--weight-decay", "0", "--max-grad-norm", "0.5", "--early-stopping-patience", "0",
             "--validation-fraction", "0.25", "--eval-batch-size", "8", "--precision", "fp32",
             "--compile", "off", "--freeze-encoder", "--max-length", "64", "--base-model", "m"]
    config = cli._train_config(parser.parse_args(given))
    assert config == TrainConfig(base_model="m", gradient_accumulation=4, warmup_ratio=0.2,
                                 weight_decay=0.0, max_grad_norm=0.5, early_stopping_patience=0,
                                 validation_fraction=0.25, eval_batch_size=8, precision="fp32",
                                 compile=False, freeze_encoder=True, max_length=64)
    options = {o for action in parser._actions for o in action.option_strings}
    missing = [f.name for f in fields(TrainConfig)
               if "--" + f.name.replace("_", "-") not in options]
    assert missing == []
    assert cli._train_config(parser.parse_args(["p.annotune"])) == TrainConfig()
