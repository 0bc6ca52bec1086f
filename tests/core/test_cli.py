"""The command line end to end on a tiny model: init → import → train → export → predict."""

import json
import subprocess
import sys

import pytest

POSITIVE = ["a lovely bright day", "great and lovely work", "what a great joy", "lovely joy"]
NEGATIVE = ["a dreadful grey day", "awful and dreadful work", "what an awful mess", "dreadful mess"]


def annotune(*args, stdin=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "annotune.core.cli", *map(str, args)],
                          input=stdin, capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture
def reviews_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = [f"{text},pos" for text in POSITIVE * 6] + [f"{text},neg" for text in NEGATIVE * 6]
    # repeated texts are duplicates: the import must report them, not keep them
    path.write_text("review,stars\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path, reviews_csv):
    path = tmp_path / "reviews.annotune"
    result = annotune("init", path, "--labels", "neg,pos")
    assert result.returncode == 0, result.stderr
    result = annotune("import", path, reviews_csv, "--map", "text=review", "--map", "label=stars")
    assert result.returncode == 0, result.stderr
    assert "8 examples" in result.stdout and "duplicate" in result.stdout
    return path


def test_stats_reports_counts(project):
    stats = json.loads(annotune("stats", project).stdout)
    assert stats["task"] == "text-classification"
    assert stats["examples"] == 8
    assert stats["accepted"] == 8


def test_user_errors_are_one_line_without_traceback(tmp_path, project):
    bad = tmp_path / "bad.csv"
    bad.write_text("review,stars\nfine text,pos\nanother,maybe\n", encoding="utf-8")
    result = annotune("import", project, bad, "--map", "text=review", "--map", "label=stars")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "bad.csv:3" in lines[0] and "maybe" in lines[0]
    assert "Traceback" not in result.stderr
    # nothing was half-imported
    assert json.loads(annotune("stats", project).stdout)["examples"] == 8

    debug = annotune("--debug", "import", project, bad, "--map", "text=review",
                     "--map", "label=stars")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_missing_project_and_unknown_task(tmp_path):
    result = annotune("stats", tmp_path / "nope.annotune")
    assert result.returncode == 1 and "nope.annotune" in result.stderr
    result = annotune("init", tmp_path / "x.annotune", "--task", "sentiment")
    assert result.returncode == 1 and "unknown task 'sentiment'" in result.stderr
    assert not (tmp_path / "x.annotune").exists()


def test_plugins_lists_tasks_and_formats():
    result = annotune("plugins")
    assert result.returncode == 0
    for name in ("text-classification", "pair-classification", "token-classification",
                 "question-answering", "conll", "squad", "jsonl"):
        assert name in result.stdout


def test_train_export_predict(tmp_path, project, tiny_base_model):
    # trained as `annotune train reviews.annotune` in the project's folder...
    result = annotune("train", project.name, "--base-model", tiny_base_model, "--epochs", "2",
                      "--batch-size", "4", "--learning-rate", "1e-3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "finished" in result.stdout
    assert "epoch 2" in result.stderr  # per-epoch metrics were shown

    runs = json.loads(annotune("runs", project, "--json", cwd="/").stdout)
    assert [run["status"] for run in runs] == ["finished"]
    assert runs[0]["artifact_dir"] == str(tmp_path / "reviews-runs" / "1" / "model")

    # ...and exported from another folder: the run is found beside the project file
    bundle = tmp_path / "bundle"
    result = annotune("export", project, bundle, cwd="/")
    assert result.returncode == 0, result.stderr
    assert {"model.onnx", "tokenizer.json", "manifest.json"} <= {p.name for p in bundle.iterdir()}

    result = annotune("preannotate", project, bundle, "--all-examples")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("stored predictions for 8 examples in ")
    assert result.stdout.rstrip().endswith("examples/s)")
    assert "8/8 " in result.stderr  # the progress line, page by page

    result = annotune("predict", bundle, stdin="a lovely day\nan awful mess\n")
    assert result.returncode == 0, result.stderr
    predictions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["input"] for p in predictions] == ["a lovely day", "an awful mess"]
    for prediction in predictions:
        assert prediction["label"] in ("neg", "pos")
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)

    exported = tmp_path / "labels.jsonl"
    result = annotune("export-data", project, exported)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(records) == 8 and {r["label"] for r in records} == {"neg", "pos"}


def test_export_without_a_run_says_what_to_do(tmp_path, project):
    result = annotune("export", project, tmp_path / "bundle")
    assert result.returncode == 1
    assert "no finished training run" in result.stderr and "annotune train" in result.stderr


def test_plugin_commands_join_the_cli(tmp_path):
    dist = tmp_path / "hello_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[annotune]\nhello = hello_plugin\n")
    (tmp_path / "hello_plugin.py").write_text(
        "from annotune.core.hookspecs import hookimpl\n\n"
        "@hookimpl\n"
        "def register_commands(cli):\n"
        "    parser = cli.add_parser('hello')\n"
        "    parser.set_defaults(func=lambda args: print('hello from a plugin') or 0)\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "annotune.core.cli", "hello"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello from a plugin"


def test_ctrl_c_stops_training_and_records_the_run_as_cancelled(project, tiny_base_model):
    import signal

    process = subprocess.Popen([sys.executable, "-m", "annotune.core.cli", "train", str(project),
                                "--base-model", str(tiny_base_model), "--epochs", "500",
                                "--batch-size", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait until the child reports training progress, then press Ctrl-C
    seen = ""
    while "epoch" not in seen:
        chunk = process.stderr.read(1)
        assert chunk, f"training ended early: {seen}"
        seen += chunk
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "cancelled" in err
    runs = json.loads(annotune("runs", project, "--json").stdout)
    assert [run["status"] for run in runs] == ["cancelled"]


def test_training_prints_what_the_run_decided_on_its_own(monkeypatch, capsys):
    """The measured precision and a batch shrunk to fit the GPU are shown as they happen."""
    from annotune.core import cli
    from annotune.core.training import job

    events = [
        {"event": "started", "run_id": 1, "device_label": "cpu (Test CPU, fp32 or bf16, "
         "measured at start)", "train_examples": 9, "validation_examples": 1},
        {"event": "precision", "precision": "bf16",
         "message": "bf16 ran 1.58x the speed of fp32 on 16 x 40-token steps: training in bf16"},
        {"event": "memory", "micro_batch_size": 8,
         "message": "GPU memory full at 16 examples per step: continuing with 8 per step"},
        {"event": "finished", "run_id": 1, "status": "finished"},
    ]

    class FakeProcess:
        def start(self, project_path, config):
            pass

        def events(self):
            yield from events

    monkeypatch.setattr(job, "TrainingProcess", FakeProcess)
    final = cli._run_training("p.annotune", {})
    assert final["event"] == "finished"
    shown = capsys.readouterr().err
    assert "training in bf16" in shown and "continuing with 8 per step" in shown


def fake_training(monkeypatch, events):
    from annotune.core.training import job

    class FakeProcess:
        def start(self, project_path, config):
            pass

        def events(self):
            yield from events

    monkeypatch.setattr(job, "TrainingProcess", FakeProcess)


def test_training_names_metrics_and_precision_as_annotune_runs_does(monkeypatch, capsys):
    from annotune.core import cli

    fake_training(monkeypatch, [
        {"event": "started", "run_id": 1, "device_label": "cpu", "task": "text-classification",
         "train_examples": 9, "validation_examples": 1},
        {"event": "precision", "precision": "bf16", "message": "bf16 ran 1.48x the speed",
         "probe": {"fp32_ms": 148.0, "bf16_ms": 100.0, "chosen": "bf16", "batch": 8,
                   "length": 15}},
        {"event": "metrics", "epoch": 1, "train_loss": 0.4,
         "metrics": {"macro_f1": 1.0, "accuracy": 0.75, "validation_loss": 0.125}},
        {"event": "finished", "run_id": 1},
    ])
    cli._run_training("p.annotune", {})
    shown = capsys.readouterr().err
    assert "epoch 1: Macro F1 1.0000, Accuracy 0.7500, Validation loss 0.1250" in shown
    assert "macro_f1" not in shown
    assert "Half precision (bf16) was 1.48× faster on this machine, so training used it" in shown
    assert "note:" not in shown  # nothing to warn about for classification


def test_question_answering_on_few_questions_warns_at_the_start(monkeypatch, capsys):
    from annotune.core import cli

    fake_training(monkeypatch, [
        {"event": "started", "run_id": 1, "device_label": "cpu", "task": "question-answering",
         "train_examples": 280, "validation_examples": 20},
        {"event": "finished", "run_id": 1},
    ])
    cli._run_training("p.annotune", {})
    shown = capsys.readouterr().err
    assert "note: 280 labeled questions: question answering models learn from thousands" in shown


# -- input files, stdin and closed pipes -----------------------------------------------------
TEXTS = ["🍕 tonight", "👨‍👩‍👧 trip", "Jose\u0301 was bored", "東京の映画", "فيلم سيء", "סרט טוב"]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory, tiny_base_model):
    """A tiny classifier bundle exported in-process (no training needed to read inputs)."""
    import transformers

    from annotune.core.export import export_run
    from annotune.core.tasks import TaskSettings

    root = tmp_path_factory.mktemp("cli-bundle")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_base_model,
                                                                             num_labels=2)
    model.save_pretrained(root / "run" / "model")
    transformers.AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(
        root / "run" / "model")
    (root / "run" / "run.json").write_text(json.dumps({
        "task": "text-classification", "settings": TaskSettings(labels=("neg", "pos")).to_dict(),
        "config": {}, "metrics": {}, "samples": [{"text": t} for t in TEXTS]}), encoding="utf-8")
    return export_run(root / "run", root / "bundle").bundle_dir


def predict_bytes(bundle, data, *args, env=None):
    """Run `annotune predict` with raw bytes on stdin (or a file given in args)."""
    import os

    return subprocess.run([sys.executable, "-m", "annotune.core.cli", "predict", str(bundle),
                           *map(str, args)], input=data, capture_output=True, timeout=300,
                          env={**os.environ, **(env or {})})


def one_error_line(result):
    assert result.returncode == 1 and result.stdout == b""
    lines = result.stderr.decode("utf-8").strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "unexpected" not in lines[0]
    return lines[0]


def test_predict_reads_utf16_and_crlf_and_keeps_every_character(bundle_dir):
    data = ("\r\n".join(TEXTS) + "\r\n").encode("utf-16")
    result = predict_bytes(bundle_dir, data)
    assert result.returncode == 0, result.stderr
    inputs = [json.loads(line)["input"] for line in result.stdout.decode().splitlines()]
    assert inputs == TEXTS


def test_predict_on_a_latin1_file_names_file_and_line(bundle_dir, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_bytes("fine\ncafé crème\n".encode("latin-1"))
    line = one_error_line(predict_bytes(bundle_dir, b"", path))
    assert line.startswith(f"error: {path}:2: the file is not UTF-8")
    assert "'café crème'" in line and "iconv -f latin1 -t utf-8 texts.txt" in line


@pytest.mark.parametrize("locale", [None, "C"])
def test_predict_on_latin1_stdin_names_the_line(bundle_dir, locale):
    env = {"LC_ALL": locale, "PYTHONUTF8": "0"} if locale else None
    line = one_error_line(predict_bytes(bundle_dir, "ok\ncafé\n".encode("latin-1"), env=env))
    assert line.startswith("error: <stdin>:2: the file is not UTF-8") and "iconv" in line


def test_predict_refuses_half_a_surrogate_pair_with_its_line(bundle_dir):
    data = b'{"text": "whole \\ud83c\\udf55"}\n{"text": "half \\ud83c"}\n'
    line = one_error_line(predict_bytes(bundle_dir, data))
    assert line.startswith("error: <stdin>:2 (field 'text'): the text holds a lone surrogate "
                           "U+D83C at character 6")


def test_predict_names_the_line_of_a_json_object_without_the_field(bundle_dir):
    line = one_error_line(predict_bytes(bundle_dir, '🍕\n{"body": "x"}\n'.encode()))
    assert line.startswith("error: <stdin>:2: the JSON object has no text under 'text' "
                           "(keys: body)")


def test_predict_on_a_missing_file_or_a_folder(bundle_dir, tmp_path):
    assert "no such file" in one_error_line(predict_bytes(bundle_dir, b"", tmp_path / "no.txt"))
    assert "is a folder" in one_error_line(predict_bytes(bundle_dir, b"", tmp_path))


@pytest.mark.parametrize("command", ["plugins", "predict"])
def test_a_closed_pipe_ends_quietly(bundle_dir, tmp_path, command):
    """`annotune ... | head -1`: the reader is gone; no traceback, the exit status of SIGPIPE."""
    import os

    texts = tmp_path / "many.txt"
    texts.write_text("".join(f"{TEXTS[n % len(TEXTS)]} {n}\n" for n in range(3000)),
                     encoding="utf-8")
    args = ["plugins"] if command == "plugins" else ["predict", str(bundle_dir), str(texts)]
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: every write fails as it does after head exits
    try:
        result = subprocess.run([sys.executable, "-m", "annotune.core.cli", *args],
                                stdout=write_end, stderr=subprocess.PIPE, timeout=300)
    finally:
        os.close(write_end)
    assert result.returncode == 141
    assert result.stderr == b""


def test_export_data_into_a_folder_that_cannot_be_written(project, tmp_path):
    result = annotune("export-data", project, "/proc/labels.jsonl")
    assert result.returncode == 1 and "unexpected" not in result.stderr
    assert "/proc/labels.jsonl: cannot write here" in result.stderr


def test_predict_keeps_every_character_when_stdout_is_not_utf8(bundle_dir):
    result = predict_bytes(bundle_dir, "\n".join(TEXTS).encode(),
                           env={"PYTHONIOENCODING": "latin-1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode("ascii").splitlines()  # JSON escapes only
    assert [json.loads(line)["input"] for line in lines] == TEXTS


def test_an_argument_in_another_encoding_is_explained(tmp_path):
    import os

    label = os.fsdecode(b"caf\xe9")  # what Python makes of Latin-1 bytes in argv
    result = annotune("init", tmp_path / "p.annotune", "--labels", f"{label},pos")
    assert result.returncode == 1 and "unexpected" not in result.stderr
    assert "lone surrogate U+DCE9" in result.stderr and "give it as UTF-8" in result.stderr
    assert not (tmp_path / "p.annotune").exists()
