"""`annotune serve` with tiny exported bundles of all four tasks: endpoints, refusals, the CLI."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import transformers
from starlette.testclient import TestClient

from annotune.core.export import export_run
from annotune.core.inference import Predictor
from annotune.core.plugins import registry
from annotune.core.serve.app import create_app
from annotune.core.serve.batching import MicroBatcher
from annotune.core.serve.limits import ServeLimits
from annotune.core.tasks import TaskSettings

# what people type: emoji, a ZWJ family, CJK, Arabic and Hebrew, "José" with a combining accent,
# Windows line ends
HARD_TEXTS = ["pizza 🍕 tonight", "👨‍👩‍👧 went to Berlin", "東京で会いましょう",
              "مرحبا بالعالم", "שלום עולם", "Jose\u0301 lives in Sa\u0303o Paulo",
              "first line\r\nsecond line"]
QA_SAMPLES = [
    {"context": "The bridge was finished in 1932 and painted red the year after.",
     "question": "When was the bridge finished?"},
    {"context": "Tea came to the town with the railway.", "question": "What brought tea?"},
]
SAMPLES = [{"text": t} for t in HARD_TEXTS]
TASKS = {
    "text-classification": (TaskSettings(labels=("neg", "pos")), SAMPLES),
    "pair-classification": (TaskSettings(labels=("entailment", "not_entailment")),
                            [{"text": "A man plays.", "text_pair": "Someone plays."}]),
    "token-classification": (TaskSettings(labels=("PER", "LOC")), SAMPLES),
    "question-answering": (TaskSettings(max_length=48, stride=16), QA_SAMPLES),
}


def make_bundle(folder, base_model, task_name):
    """Export a tiny random model of the task as a bundle (a run folder, then export_run)."""
    task = registry().task(task_name)
    settings, samples = TASKS[task_name]
    run = folder / "run"
    model = getattr(transformers, task.auto_model).from_pretrained(
        base_model, **task.model_kwargs(settings))
    model.save_pretrained(run / "model")
    transformers.AutoTokenizer.from_pretrained(base_model).save_pretrained(run / "model")
    (run / "run.json").write_text(json.dumps({
        "task": task_name, "settings": settings.to_dict(), "config": {}, "metrics": {},
        "base_model": "tiny", "device": "cpu", "samples": samples}), encoding="utf-8")
    return export_run(run, folder / "bundle").bundle_dir


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, tiny_base_model):
    return {name: make_bundle(tmp_path_factory.mktemp(name), tiny_base_model, name)
            for name in TASKS}


@pytest.fixture(scope="module")
def predictors(bundles):
    return {name: Predictor(folder, threads=1) for name, folder in bundles.items()}


def client_for(predictor, **limits):
    return TestClient(create_app(predictor, ServeLimits(**limits)))


def test_classification_answers_inputs_in_order_like_the_predictor(predictors):
    predictor = predictors["text-classification"]
    with client_for(predictor) as client:
        response = client.post("/predict", json={"inputs": HARD_TEXTS})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        got = response.json()["predictions"]
        single = client.post("/predict", json={"input": {"text": HARD_TEXTS[0]}}).json()
    expected = predictor.predict(HARD_TEXTS)
    assert [p["label"] for p in got] == [p["label"] for p in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-6)
    assert single["prediction"]["label"] == expected[0]["label"]


@pytest.mark.parametrize("task", ["text-classification", "token-classification"])
def test_a_batch_of_mixed_lengths_answers_each_request_as_if_it_were_alone(predictors, task):
    # One model call, its texts cut into length buckets (a one-word text and a long review
    # are not padded together): every request still gets its own answers, in its order.
    predictor = predictors[task]
    long_review = " ".join(["the battery lasts 🔋 and the screen is bright"] * 12) + "\r\nok"
    requests = [[text] for text in HARD_TEXTS] + [["ok", long_review, HARD_TEXTS[1]],
                                                   [long_review], ["a"]]
    calls = []

    def predict(items):
        calls.append(len(items))
        return predictor.predict(items)

    async def serve_together():
        batcher = MicroBatcher(predict, max_batch=64, max_wait_ms=200)
        batcher.start()
        answers = await asyncio.gather(*(batcher.submit(items) for items in requests))
        await batcher.stop()
        return answers

    answers = asyncio.run(serve_together())
    assert calls == [sum(map(len, requests))]
    for items, got in zip(requests, answers, strict=True):
        alone = [predictor.predict([item])[0] for item in items]
        assert len(got) == len(items)
        for mine, theirs in zip(got, alone, strict=True):
            if task == "token-classification":
                assert [(s["start"], s["end"], s["text"]) for s in mine["spans"]] == [
                    (s["start"], s["end"], s["text"]) for s in theirs["spans"]]
            else:
                assert mine["label"] == theirs["label"]
                assert mine["probabilities"] == pytest.approx(theirs["probabilities"],
                                                              abs=1e-5)


def test_pair_classification_takes_objects_with_both_fields(predictors):
    predictor = predictors["pair-classification"]
    pair = {"text": "Ein Mann spielt Gitarre 🎸.", "text_pair": "Jemand macht Musik."}
    with client_for(predictor) as client:
        got = client.post("/predict", json={"inputs": [pair, pair]}).json()["predictions"]
        missing = client.post("/predict", json={"inputs": [pair, {"text": "alone"}]})
        plain = client.post("/predict", json={"inputs": ["only one text"]})
    assert got[0] == got[1] and got[0]["label"] in predictor.labels
    assert missing.status_code == 400
    assert missing.json()["error"].startswith("inputs[1] has no field 'text_pair'")
    assert plain.status_code == 400 and "reads 2 fields" in plain.json()["error"]


def test_ner_spans_index_the_exact_text_sent(predictors):
    predictor = predictors["token-classification"]
    with client_for(predictor) as client:
        response = client.post("/predict", json={"inputs": HARD_TEXTS})
        tokens = client.post("/predict", json={"input": {
            "text": "Jose\u0301 met 👨‍👩‍👧 in 東京", "tokens": ["Jose\u0301", "met", "👨‍👩‍👧",
                                                               "in", "東京"]}})
        bad_tokens = client.post("/predict", json={"input": {"text": "a b", "tokens": "a b"}})
    assert response.status_code == 200
    for text, prediction in zip(HARD_TEXTS, response.json()["predictions"], strict=True):
        for span in prediction["spans"]:
            assert span["text"] == text[span["start"]:span["end"]]
    assert response.json()["predictions"] == predictor.predict(HARD_TEXTS)
    assert tokens.status_code == 200
    assert bad_tokens.status_code == 400
    assert bad_tokens.json()["error"] == "input.tokens must be a list of texts"


def test_question_answering_answers_are_slices_of_the_context(predictors):
    predictor = predictors["question-answering"]
    items = [{"context": "Die Brücke in 東京 wurde 1932 fertig 🌉, sagt Jose\u0301.",
              "question": "Wann wurde die Brücke fertig?"},
             {"context": "مرحبا بالعالم\r\nשלום עולם", "question": "What is said?"}]
    with client_for(predictor) as client:
        got = client.post("/predict", json={"inputs": items}).json()["predictions"]
        metadata = client.get("/metadata").json()
    for item, answer in zip(items, got, strict=True):
        if answer["start"] >= 0:
            assert answer["text"] == item["context"][answer["start"]:answer["end"]]
    assert got == predictor.predict(items)
    assert metadata["fields"] == ["context", "question"] and metadata["labels"] == []


def test_raw_utf8_and_escaped_surrogate_pairs_read_the_same(predictors):
    predictor = predictors["token-classification"]
    text = "Zoë 🍕 in שלום"
    raw = json.dumps({"input": text}, ensure_ascii=False).encode("utf-8")
    escaped = json.dumps({"input": text}, ensure_ascii=True).encode("ascii")
    assert b"\\ud83c\\udf55" in escaped
    with client_for(predictor) as client:
        first = client.post("/predict", content=raw).json()
        second = client.post("/predict", content=escaped).json()
        with_bom = client.post("/predict", content=b"\xef\xbb\xbf" + raw).json()
    assert first == second == with_bom == {"prediction": predictor.predict([text])[0]}


def test_health_metadata_and_openapi(bundles, predictors):
    predictor = predictors["text-classification"]
    manifest = json.loads((bundles["text-classification"] / "manifest.json").read_text())
    with client_for(predictor) as client:
        health = client.get("/health")
        metadata = client.get("/metadata").json()
        document = client.get("/openapi.json").json()
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert metadata["task"] == "text-classification"
    assert metadata["labels"] == ["neg", "pos"]
    assert metadata["model"]["sha256"] == manifest["files"]["model.onnx"]["sha256"]
    assert metadata["weights"]["sha256"] == manifest["files"]["model.onnx.data"]["sha256"]
    assert metadata["limits"]["max_batch"] == 32
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/predict", "/health", "/metadata", "/openapi.json"}
    schemas = document["components"]["schemas"]
    assert schemas["Prediction"]["properties"]["probabilities"]["type"] == "object"
    assert schemas["Prediction"]["example"]["label"] in ("neg", "pos")
    assert schemas["Item"]["oneOf"][1]["required"] == ["text"]


def test_openapi_inputs_follow_each_tasks_fields(predictors):
    for name, predictor in predictors.items():
        with client_for(predictor) as client:
            schemas = client.get("/openapi.json").json()["components"]["schemas"]
        item = schemas["Item"]
        mapping = item["oneOf"][1] if "oneOf" in item else item
        assert mapping["required"] == list(predictor.task.fields), name
        if name == "token-classification":
            assert mapping["properties"]["tokens"]["type"] == "array"
        if name == "question-answering":
            assert schemas["Prediction"]["properties"]["start"]["type"] == "integer"


@pytest.mark.parametrize(("body", "message"), [
    (b"", "the body is empty"),
    (b"{not json", "the body is not valid JSON: Expecting property name enclosed in double "
                   "quotes at line 1, column 2"),
    (b"\xff\xfe{}", "the body is not UTF-8: byte 0xff at offset 0"),
    (b'["a text"]', "the body must be a JSON object"),
    (b'{"texts": ["a"]}', "unknown key 'texts' in the body"),
    (b'{"inputs": "a text"}', '"inputs" must be a list of items, not a text'),
    (b'{"inputs": []}', '"inputs" is empty'),
    (b'{"inputs": ["ok", null]}', "inputs[1] is null"),
    (b'{"inputs": [{"text": 5}]}', "inputs[0].text is a number, not a text"),
    (b'{"inputs": [{"text": "a", "lang": "en"}]}', "inputs[0] has the unknown field 'lang'"),
    (b'{"input": "half \\udf55 a pizza"}', "input: the text holds a lone surrogate U+DF55"),
    (b'{"input": "a", "inputs": ["b"]}', 'the body needs either "inputs"'),
    (b"[" * 100_000, "the JSON is nested too deeply to read"),
])
def test_malformed_bodies_are_400_with_the_reason(predictors, body, message):
    with client_for(predictors["text-classification"]) as client:
        response = client.post("/predict", content=body)
        after = client.post("/predict", json={"input": "still answering"})
    assert response.status_code == 400
    assert response.json()["error"].startswith(message), response.json()
    assert after.status_code == 200


def test_large_bodies_and_long_lists_are_413(predictors):
    with client_for(predictors["text-classification"], max_body_bytes=2000, max_items=4,
                    max_queue=8) as client:
        declared = client.post("/predict", json={"inputs": ["x" * 3000]})
        chunked = client.post("/predict", content=iter([b'{"inputs": ["', b"y" * 3000, b'"]}']))
        many = client.post("/predict", json={"inputs": ["a"] * 5})
        fine = client.post("/predict", json={"inputs": ["a"] * 4})
    assert declared.status_code == 413 and "3015 bytes" in declared.json()["error"]
    assert chunked.status_code == 413 and "over 2000 bytes" in chunked.json()["error"]
    assert many.status_code == 413 and "at most 4 per request" in many.json()["error"]
    assert fine.status_code == 200


def test_unknown_paths_and_methods_answer_json(predictors):
    with client_for(predictors["text-classification"]) as client:
        missing = client.get("/predictions")
        wrong = client.get("/predict")
    assert missing.status_code == 404 and "use POST /predict" in missing.json()["error"]
    assert wrong.status_code == 405 and wrong.json()["error"] == "GET is not allowed on /predict"


# -- the command ---------------------------------------------------------------------------------

def _start(bundle, *options):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "annotune.core.cli", "serve", str(bundle),
                                "--port", "0", "--threads", "1", *options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               encoding="utf-8", env=env)
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise AssertionError(line + process.stderr.read())
    return process, line.split(" at ")[-1].strip()


def test_serve_command_answers_and_stops_cleanly_on_sigterm(bundles):
    process, url = _start(bundles["text-classification"])
    try:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/health").json()["status"] == "ok"
            answer = client.post("/predict", json={"inputs": HARD_TEXTS})
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == len(HARD_TEXTS)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped after 1 requests (7 inputs in 1 model calls)" in out
    assert err == ""


def test_serving_beyond_this_machine_warns(bundles):
    started = time.perf_counter()
    process, url = _start(bundles["text-classification"], "--host", "0.0.0.0")
    try:
        with httpx.Client(timeout=30) as client:
            port = url.rsplit(":", 1)[1]
            assert client.get(f"http://127.0.0.1:{port}/health").status_code == 200
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert err.startswith("warning: serving on 0.0.0.0: every machine that reaches this one")
    assert time.perf_counter() - started < 60


def test_a_taken_port_is_a_clear_error(bundles):
    process, url = _start(bundles["text-classification"])
    try:
        port = url.rsplit(":", 1)[1]
        done = subprocess.run([sys.executable, "-m", "annotune.core.cli", "serve",
                               str(bundles["text-classification"]), "--port", port],
                              capture_output=True, text=True, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot listen on 127.0.0.1 port {port}: ")
    assert "choose another, or 0 for any free port" in done.stderr
