"""Export scores the fp32 and int8 bundles on the run's validation data and states int8's cost."""

import json

import numpy as np
import pytest
import torch
import transformers

from annotune.core.errors import AnnotuneError
from annotune.core.export import export_run
from annotune.core.export import validation as validation_module
from annotune.core.export.parity import run_batches, signal_to_noise_db
from annotune.core.export.validation import (
    Scored,
    ValidationReport,
    ValidationScorer,
    ValidationSet,
)
from annotune.core.features import collate, pad_id, prepare_tokenizer, split_outputs
from annotune.core.plugins import registry
from annotune.core.tasks import Feature, TaskSettings
from annotune.core.training.validation_file import read_validation

WORDS = ("calm", "bright", "quick", "heavy", "plain", "narrow", "early", "silent")
NOUNS = ("river", "ledger", "window", "garden", "engine", "ticket")
LABELS = ("neg", "pos")
N_VALIDATION = 40


def sentence(i: int) -> str:
    """Return a made-up sentence whose length varies with i (batches need padding)."""
    words = [WORDS[(i + k) % len(WORDS)] for k in range(1 + i % 7)]
    return f"the {' '.join(words)} {NOUNS[i % len(NOUNS)]} number {i}"


def classification_validation() -> list[dict]:
    return [{"fields": {"text": sentence(i)}, "annotation": {"label": LABELS[i % 3 == 0]}}
            for i in range(N_VALIDATION)]


def ner_validation() -> list[dict]:
    records = []
    for i in range(12):
        text = f"Ada Byron met {NOUNS[i % len(NOUNS)]} people in Turin on day {i}"
        spans = [{"start": 0, "end": 9, "label": "PER"}]
        if i % 2:
            spans.append({"start": text.index("Turin"), "end": text.index("Turin") + 5,
                          "label": "LOC"})
        records.append({"fields": {"text": text}, "annotation": {"spans": spans}})
    return records


def qa_validation() -> list[dict]:
    records = []
    for i in range(10):
        place = NOUNS[i % len(NOUNS)]
        context = (f"The {place} in town {i} opened in {1900 + i} and closed "
                   f"{'after a long winter' if i % 2 else 'when the mill burned down'}.")
        answer = str(1900 + i)
        records.append({"fields": {"context": context, "question": f"When did the {place} open?"},
                        "annotation": {"answers": [{"start": context.index(answer),
                                                    "text": answer}]}})
    return records


def torch_score(run_dir, task, settings, records) -> float:
    """Score the checkpoint with PyTorch, then the task's decode and metrics (as training does)."""
    tokenizer = prepare_tokenizer(run_dir / "model" / "tokenizer.json")
    model = getattr(transformers, task.auto_model).from_pretrained(run_dir / "model").eval()
    examples = [r["fields"] for r in records]
    features = task.encode(tokenizer, examples, None, settings)
    outputs = []
    for start in range(0, len(features), 8):
        chunk = features[start:start + 8]
        batch = collate(chunk, pad_id(tokenizer))
        with torch.inference_mode():
            result = model(**{name: torch.from_numpy(array) for name, array in batch.items()})
        arrays = {name: result[name].float().numpy() for name in task.output_names}
        outputs.extend(split_outputs(arrays, chunk, task.sequence_outputs))
    predictions = task.decode(examples, features, outputs, settings)
    metrics = task.metrics(predictions, [r["annotation"] for r in records], settings)
    return float(metrics[task.main_metric])


def make_run(folder, base_model, task_name, settings, records=None):
    """Write a run folder as training does: model/, run.json and (given records) its validation."""
    task = registry().task(task_name)
    model = getattr(transformers, task.auto_model).from_pretrained(
        base_model, **task.model_kwargs(settings))
    model.save_pretrained(folder / "model")
    transformers.AutoTokenizer.from_pretrained(base_model).save_pretrained(folder / "model")
    samples = [r["fields"] for r in (records or [])[:4]] or [{"text": "A short one."}]
    run = {"task": task_name, "settings": settings.to_dict(), "config": {"epochs": 1},
           "main_metric": task.main_metric, "metrics": {task.main_metric: 0.5},
           "base_model": "tiny", "device": "cpu", "samples": samples}
    if records is not None:
        with (folder / "validation.jsonl").open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record) + "\n")
        run["metrics"] = {task.main_metric: torch_score(folder, task, settings, records)}
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def validated_run(tmp_path_factory, tiny_base_model):
    return make_run(tmp_path_factory.mktemp("run"), tiny_base_model, "text-classification",
                    TaskSettings(labels=LABELS), classification_validation())


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory, validated_run):
    return export_run(validated_run, tmp_path_factory.mktemp("exports") / "int8", quantize=True)


def shift_int8_scores(monkeypatch, points: dict[str, float]):
    """Make the int8 candidates score ``points`` below fp32 ("model.int8" / "model.int8.pc")."""
    real = ValidationScorer.score
    fp32 = {}

    def shifted(self, model):
        scored = real(self, model)
        if model.name == "model.onnx":
            fp32["score"] = scored.score
            return scored
        return Scored(scored.predictions, fp32["score"] - points[model.stem] / 100,
                      scored.outputs)

    monkeypatch.setattr(ValidationScorer, "score", shifted)


def test_int8_export_states_both_scores_and_the_cost(int8_export, validated_run):
    report = int8_export
    figures = report.validation
    assert figures.metric == "f1"
    assert figures.examples == figures.available == N_VALIDATION
    assert 0.0 <= figures.fp32 <= 1.0 and 0.0 <= figures.int8 <= 1.0
    assert figures.int8_cost_points == pytest.approx((figures.fp32 - figures.int8) * 100)
    assert 0.0 <= figures.int8_agreement <= 1.0
    text = str(report)
    assert (f"validation  f1 fp32 {figures.fp32:.4f}, int8 {figures.int8:.4f} "
            f"({0.0 - figures.int8_cost_points:+.2f} points) on 40 examples") in text
    assert "-0.00 points" not in text
    manifest = json.loads((report.bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["validation"] == figures.to_dict() == report.to_dict()["validation"]
    assert manifest["validation"]["file"] == "validation.jsonl"
    assert manifest["validation"]["examples"] == N_VALIDATION
    assert manifest["validation"]["int8_cost_points"] == figures.int8_cost_points
    assert manifest["quantization"]["chosen_by"] == "validation metric and output fidelity"
    assert manifest["quantization"]["validation_sqnr_db"] > 10  # int8 outputs near fp32's
    assert report.int8_sqnr_db == manifest["quantization"]["validation_sqnr_db"]
    scheme = "per-channel" if manifest["quantization"]["per_channel"] else "per-tensor"
    assert report.int8_scheme == scheme
    assert f"int8        {scheme} scales; " in text
    assert f"outputs {report.int8_sqnr_db:.1f} dB above the int8 noise on validation" in text


def test_fp32_bundle_scores_what_pytorch_and_the_task_metrics_give(int8_export, validated_run):
    run = json.loads((validated_run / "run.json").read_text(encoding="utf-8"))
    task = registry().task("text-classification")
    expected = torch_score(validated_run, task, TaskSettings(labels=LABELS),
                           classification_validation())
    figures = int8_export.validation
    assert figures.fp32 == pytest.approx(expected, abs=1e-12)
    assert figures.recorded == run["metrics"]["f1"]
    assert figures.matches_recorded is True
    assert f"fp32 bundle equals the checkpoint's recorded f1 {expected:.4f}" in str(int8_export)
    assert int8_export.to_dict()["validation"]["fp32_matches_recorded"] is True


def test_a_score_unlike_the_checkpoints_is_stated(validated_run, tmp_path):
    """A checkpoint scored elsewhere (a GPU in bf16, say) may record another figure."""
    run = json.loads((validated_run / "run.json").read_text(encoding="utf-8"))
    recorded = run["metrics"]["f1"] + (0.05 if run["metrics"]["f1"] < 0.5 else -0.05)
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("model", "validation.jsonl"):
        (copy / name).symlink_to(validated_run / name)
    (copy / "run.json").write_text(json.dumps({**run, "metrics": {"f1": recorded}}),
                                   encoding="utf-8")
    report = export_run(copy, tmp_path / "bundle")
    assert report.validation.recorded == recorded and report.validation.int8 is None
    assert report.validation.matches_recorded is False
    change = (report.validation.fp32 - recorded) * 100
    assert (f"fp32 bundle differs from the checkpoint's recorded f1 {recorded:.4f} by "
            f"{change:+.2f} points") in str(report)
    assert any(f"the checkpoint recorded {recorded:.4f}" in note for note in report.notes)


def test_a_cost_above_half_a_point_is_noted_and_the_bundle_still_written(
        validated_run, tmp_path, monkeypatch):
    shift_int8_scores(monkeypatch, {"model.int8": 0.6, "model.int8.pc": 0.6})
    report = export_run(validated_run, tmp_path / "bundle", quantize=True)
    assert report.validation.int8_cost_points == pytest.approx(0.6)
    expected = report.validation.cost_note()
    assert expected.startswith("int8 costs 0.60 points of f1 on 40 validation examples (")
    assert expected.endswith("more than 0.5 allowed); the fp32 bundle keeps it: export "
                             "without --int8")
    assert expected in report.notes
    assert f"note        {expected}" in str(report)
    assert report.quantized and (report.bundle_dir / "model.onnx").is_file()


def test_the_cost_note_counts_the_decisions_int8_changed_and_what_chance_explains():
    figures = ValidationReport(metric="f1", examples=200, available=200, fp32=0.8692,
                               int8=0.8591, int8_agreement=0.99)
    # two changed decisions of 200: sqrt(2) examples' worth, 0.71 points
    assert figures.cost_note() == (
        "int8 costs 1.01 points of f1 on 200 validation examples (2 decisions changed: chance "
        "alone moves such a figure by about ±0.71; more than 0.5 allowed); the fp32 bundle "
        "keeps it: export without --int8")
    squad = ValidationReport(metric="f1", examples=40, available=40, fp32=50.34, int8=46.22,
                             int8_agreement=0.825, scale=100.0)
    assert "(7 decisions changed: chance alone moves such a figure by about ±6.61; " in \
        squad.cost_note()
    unchanged = ValidationReport(metric="accuracy", examples=40, available=40, fp32=0.8,
                                 int8=0.79, int8_agreement=1.0)
    assert "(0 decisions changed, more than 0.5 allowed)" in unchanged.cost_note()


@pytest.mark.parametrize(("int8", "noted"), [(0.794, True), (0.795, False), (0.796, False),
                                             (0.81, False)])
def test_only_a_cost_above_half_a_point_is_noted(int8, noted):
    figures = ValidationReport(metric="accuracy", examples=500, available=500, fp32=0.8,
                               int8=int8)
    assert figures.over_allowance is noted
    assert any("int8 costs" in note for note in figures.notes()) is noted


PT, PC = "model.int8", "model.int8.pc"  # per-tensor (tried first), per-channel


@pytest.mark.parametrize(("costs", "changed", "sqnr", "per_channel"), [
    # 3.75 points apart; one decision differs between them, so one example's worth (2.5
    # points) is chance's share: the cheaper one wins, whatever its outputs
    ({PT: 4.0, PC: 0.25}, {PT: 1}, {PT: 30.0, PC: 20.0}, True),
    ({PT: 0.25, PC: 4.0}, {PT: 1}, {PT: 20.0, PC: 30.0}, False),
    # 1.75 points apart, less than one example: the outputs closer to fp32 win
    ({PT: 0.25, PC: 2.0}, {PT: 1}, {PT: 20.0, PC: 30.0}, True),
    ({PT: 2.0, PC: 0.25}, {PT: 1}, {PT: 30.0, PC: 20.0}, False),
    # 3.75 points apart but four decisions differ: chance explains up to 2 x 2.5 points
    ({PT: 0.25, PC: 4.0}, {PT: 4}, {PT: 20.0, PC: 30.0}, True),
])
def test_the_other_int8_candidate_wins_by_a_clear_cost_or_else_by_closer_outputs(
        validated_run, tmp_path, monkeypatch, costs, changed, sqnr, per_channel):
    """With 40 validation examples one example is 2.5 points of the metric."""
    shift_int8_scores(monkeypatch, costs)
    shifted = ValidationScorer.score

    def with_changed_decisions(self, model):
        # a per-tensor model that decides as fp32 everywhere ends the search early; these
        # change decisions, so the per-channel candidate is tried too
        scored = shifted(self, model)
        flips = changed.get(model.stem, 0)
        predictions = [dict(p, label="pos" if p["label"] == "neg" else "neg") if n < flips
                       else p for n, p in enumerate(scored.predictions)]
        return Scored(predictions, scored.score, scored.outputs)

    monkeypatch.setattr(ValidationScorer, "score", with_changed_decisions)
    monkeypatch.setattr(ValidationScorer, "fidelity", staticmethod(
        lambda reference, candidate: sqnr[PC if candidate.score == reference.score
                                          - costs[PC] / 100 else PT]))
    report = export_run(validated_run, tmp_path / "bundle", quantize=True)
    manifest = json.loads((report.bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["quantization"]["per_channel"] is per_channel
    kept = PC if per_channel else PT
    assert report.validation.int8_cost_points == pytest.approx(costs[kept])
    assert manifest["quantization"]["validation_sqnr_db"] == sqnr[kept]


def test_a_run_without_validation_data_says_so(tmp_path, tiny_base_model):
    run = make_run(tmp_path / "run", tiny_base_model, "text-classification",
                   TaskSettings(labels=LABELS))
    report = export_run(run, tmp_path / "bundle", quantize=True)
    assert report.validation is None
    assert report.int8_agreement is not None  # the sample agreement is still measured
    assert "validation  no validation data was available" in str(report)
    assert any("its accuracy cost is unknown" in note for note in report.notes)
    manifest = json.loads((report.bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["validation"] is None
    assert manifest["quantization"]["chosen_by"] == "sample agreement"
    assert report.to_dict()["validation"] is None


def test_large_validation_sets_are_thinned_evenly(validated_run, tmp_path, monkeypatch):
    task = registry().task("text-classification")
    data = ValidationSet.read(validated_run, task, limit=10)
    assert data.total == N_VALIDATION and len(data.examples) == 10
    assert [e["text"] for e in data.examples] == [sentence(i) for i in range(0, 40, 4)]
    assert data.annotations == [{"label": LABELS[i % 3 == 0]} for i in range(0, 40, 4)]
    monkeypatch.setattr(validation_module, "VALIDATION_LIMIT", 10)
    report = export_run(validated_run, tmp_path / "bundle")
    assert report.validation.examples == 10 and report.validation.available == N_VALIDATION
    assert report.validation.matches_recorded is None
    text = str(report)
    assert "on 10 examples (an even spread of the run's 40)" in text
    assert "(not comparable with a subset)" in text


def test_long_validation_texts_are_thinned_to_a_token_budget(validated_run, tmp_path,
                                                              monkeypatch):
    """QA windows of 384 tokens would make scoring three models take many minutes."""
    task = registry().task("text-classification")
    data = ValidationSet.read(validated_run, task)
    tokenizer = prepare_tokenizer(validated_run / "model" / "tokenizer.json")
    settings = TaskSettings(labels=LABELS)
    data.encode(task, tokenizer, settings)
    everything = sum(len(f) for f in data.features)
    assert len(data.examples) == N_VALIDATION  # within the default budget: all of them
    data.encode(task, tokenizer, settings, budget=everything // 4)
    assert 0 < len(data.examples) <= N_VALIDATION // 4 + 1
    assert len(data.features) == len(data.examples) == len(data.annotations)
    assert sum(len(f) for f in data.features) <= everything // 4 * 1.5
    assert data.examples[0]["text"] == sentence(0)  # an even spread from the start

    monkeypatch.setattr(validation_module, "VALIDATION_TOKENS", everything // 4)
    report = export_run(validated_run, tmp_path / "bundle")
    assert report.validation.examples < N_VALIDATION
    assert f"(an even spread of the run's {N_VALIDATION})" in str(report)


@pytest.mark.parametrize(("task_name", "settings", "records"), [
    ("token-classification", TaskSettings(labels=("PER", "LOC")), ner_validation()),
    ("question-answering", TaskSettings(max_length=20, stride=4), qa_validation()),
])
def test_sequence_tasks_are_scored_with_their_own_metric(tmp_path, tiny_base_model, task_name,
                                                          settings, records):
    run = make_run(tmp_path / "run", tiny_base_model, task_name, settings, records)
    report = export_run(run, tmp_path / "bundle")
    task = registry().task(task_name)
    assert report.validation.metric == task.main_metric
    assert report.validation.fp32 == pytest.approx(
        torch_score(run, task, settings, records), abs=1e-9)
    assert report.validation.matches_recorded is True
    assert report.validation.examples == len(records)
    # SQuAD's F1 is a percentage, so points are its own units; entity F1 is a fraction
    assert report.validation.percent is (task_name == "question-answering")
    if task_name == "question-answering":  # long contexts are cut into windows, all scored
        assert len(task.encode(prepare_tokenizer(run / "model" / "tokenizer.json"),
                               [r["fields"] for r in records], None, settings)) > len(records)


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "not valid JSON"),
    ('{"fields": {"text": "a"}}', '"annotation"'),
    ('{"fields": {"body": "a"}, "annotation": {"label": "neg"}}', "no text in field 'text'"),
])
def test_a_damaged_validation_file_names_its_line(tmp_path, line, message):
    good = json.dumps({"fields": {"text": "fine"}, "annotation": {"label": "neg"}})
    (tmp_path / "validation.jsonl").write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(AnnotuneError, match=message) as error:
        read_validation(tmp_path, registry().task("text-classification"))
    assert f"{tmp_path / 'validation.jsonl'}:3" in str(error.value)
    assert "delete the file" in str(error.value)


def test_an_empty_or_missing_file_means_no_validation_data(tmp_path):
    task = registry().task("text-classification")
    assert read_validation(tmp_path, task) is None
    (tmp_path / "validation.jsonl").write_text("\n", encoding="utf-8")
    assert read_validation(tmp_path, task) is None


def test_length_ordered_batches_return_outputs_in_input_order():
    task = registry().task("token-classification")
    features = [Feature(example_index=i, input_ids=list(range(1, 2 + (i * 7) % 23)),
                        token_type_ids=[0] * (1 + (i * 7) % 23)) for i in range(40)]

    def echo(batch):
        ids = batch["input_ids"].astype(np.float32)[..., None]
        return {"logits": ids}

    by_input = run_batches(features, 0, task, echo)
    by_length = run_batches(features, 0, task, echo, by_length=True)
    for feature, a, b in zip(features, by_input, by_length, strict=True):
        np.testing.assert_array_equal(a["logits"][:, 0], feature.input_ids)
        np.testing.assert_array_equal(b["logits"][:, 0], feature.input_ids)


def test_an_unchanged_score_reads_as_plus_zero():
    figures = ValidationReport(metric="accuracy", examples=3, available=3, fp32=0.1, int8=0.1)
    assert figures.int8_cost_points == 0.0
    assert figures.summary() == "accuracy fp32 0.1000, int8 0.1000 (+0.00 points) on 3 examples"
    assert figures.notes() == [] and figures.matches_recorded is None


def test_a_metric_in_percent_is_not_scaled_again():
    """SQuAD's F1 runs 0-100: its points are its own units, not hundredths."""
    figures = ValidationReport(metric="f1", examples=200, available=200, fp32=84.43, int8=83.91,
                               recorded=84.43, scale=100.0)
    assert figures.percent and figures.int8_cost_points == pytest.approx(0.52)
    assert figures.summary() == "f1 fp32 84.43, int8 83.91 (-0.52 points) on 200 examples"
    assert figures.recorded_summary() == "fp32 bundle equals the checkpoint's recorded f1 84.43"
    assert figures.over_allowance and figures.to_dict()["scale"] == "0-100"
    fraction = ValidationReport(metric="f1", examples=200, available=200, fp32=0.8443,
                                int8=0.8391)
    assert not fraction.percent and fraction.int8_cost_points == pytest.approx(0.52)
    assert fraction.to_dict()["scale"] == "0-1"


def test_signal_to_noise_compares_real_positions_of_every_output():
    reference = [{"logits": np.array([3.0, 4.0])}, {"logits": np.array([[1.0, 0.0], [0.0, 1.0]])}]
    noisy = [{"logits": np.array([3.0, 4.1])}, {"logits": np.array([[1.0, 0.1], [0.0, 1.0]])}]
    # signal 9 + 16 + 1 + 1 = 27, noise 0.01 + 0.01 = 0.02
    assert signal_to_noise_db(reference, noisy) == pytest.approx(10 * np.log10(27 / 0.02))
    assert signal_to_noise_db(reference, reference) == float("inf")
    broken = [{"logits": np.array([np.nan, 4.0])}, reference[1]]
    assert signal_to_noise_db(reference, broken) == float("-inf")


@pytest.mark.parametrize(("proof", "tried", "per_channel"), [
    # 40 validation examples deciding as fp32 prove little: per-channel is tried too, and
    # its outputs, closer to fp32, win
    (300, [PT, PC], True),
    # once that many examples are enough, a candidate deciding as fp32 everywhere ends it
    (40, [PT], False),
])
def test_agreeing_on_a_few_examples_does_not_end_the_int8_search(
        validated_run, tmp_path, monkeypatch, proof, tried, per_channel):
    from annotune.core.export import quantize as quantize_module

    scored_models: list[str] = []
    real = ValidationScorer.score
    fp32: dict[str, Scored] = {}

    def as_fp32(self, model):
        scored = real(self, model)
        if model.name == "model.onnx":
            fp32["scored"] = scored
            return scored
        scored_models.append(model.stem)
        return fp32["scored"]  # every decision and score as fp32's

    monkeypatch.setattr(ValidationScorer, "score", as_fp32)
    monkeypatch.setattr(ValidationScorer, "fidelity", staticmethod(
        lambda reference, candidate: 30.0 if scored_models[-1] == PC else 20.0))
    monkeypatch.setattr(quantize_module, "prediction_agreement", lambda a, b: 1.0)
    monkeypatch.setattr(quantize_module, "argmax_agreement", lambda a, b: 1.0)
    monkeypatch.setattr(quantize_module, "PROOF_EXAMPLES", proof)
    report = export_run(validated_run, tmp_path / "bundle", quantize=True)
    assert scored_models == tried
    manifest = json.loads((report.bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["quantization"]["per_channel"] is per_channel
