"""Micro-batching, the queue's bounds and graceful shutdown, with a stand-in Predictor."""

import asyncio
import subprocess
import sys
import threading
import time

import httpx
import pytest
from starlette.testclient import TestClient

from annotune.core.errors import AnnotuneError
from annotune.core.plugins import registry
from annotune.core.serve.app import create_app
from annotune.core.serve.batching import MicroBatcher, QueueFull, ShuttingDown
from annotune.core.serve.limits import ServeLimits
from annotune.core.serve.server import bind, is_loopback, make_server, url_of
from annotune.core.tasks import TaskSettings

HARD_TEXTS = ["pizza 🍕", "👨‍👩‍👧 family", "東京タワー", "مرحبا", "שלום", "Jose\u0301",
              "line one\r\nline two", "Zoë\u200d"]


class EchoPredictor:
    """Stand in for a Predictor: echo every input, record each call's size, block when told."""

    def __init__(self):
        self.task = registry().task("text-classification")
        self.settings = TaskSettings(labels=("neg", "pos"))
        self.labels = self.settings.labels
        self.manifest = {"model": "model.onnx",
                         "files": {"model.onnx": {"sha256": "ab" * 32, "bytes": 10}}}
        self.calls: list[list] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def predict(self, items):
        self.calls.append(list(items))
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        if any(item == "bad" for item in items):
            raise AnnotuneError("item 'bad' is refused by the task")
        return [{"label": "pos", "score": 1.0, "echo": item} for item in items]


def wait_until(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# -- the batcher alone ---------------------------------------------------------------------------

def run(coroutine):
    return asyncio.run(coroutine)


def test_jobs_arriving_within_the_window_share_one_call():
    fake = EchoPredictor()

    async def scenario():
        batcher = MicroBatcher(fake.predict, max_batch=32, max_wait_ms=200)
        batcher.start()
        answers = await asyncio.gather(batcher.submit(["a"]), batcher.submit(["b", "c"]),
                                       batcher.submit(["d"]))
        await batcher.stop()
        return answers, batcher.stats.as_dict()

    answers, stats = run(scenario())
    assert fake.calls == [["a", "b", "c", "d"]]
    assert [[p["echo"] for p in answer] for answer in answers] == [["a"], ["b", "c"], ["d"]]
    assert stats["calls"] == 1 and stats["jobs"] == 3 and stats["mean_batch"] == 4


def test_a_full_batch_does_not_wait_for_the_window():
    fake = EchoPredictor()

    async def scenario():
        batcher = MicroBatcher(fake.predict, max_batch=2, max_wait_ms=60_000)
        batcher.start()
        started = time.perf_counter()
        await asyncio.gather(batcher.submit(["a"]), batcher.submit(["b"]))
        elapsed = time.perf_counter() - started
        await batcher.stop()
        return elapsed

    assert run(scenario()) < 5
    assert fake.calls == [["a", "b"]]


def test_a_lone_request_does_not_wait_for_the_window():
    fake = EchoPredictor()

    async def scenario():
        batcher = MicroBatcher(fake.predict, max_batch=32, max_wait_ms=60_000)
        batcher.start()
        started = time.perf_counter()
        await batcher.submit(["alone"])
        elapsed = time.perf_counter() - started
        await batcher.stop()
        return elapsed

    assert run(scenario()) < 5


def test_a_request_being_read_holds_the_batch_until_it_is_queued():
    fake = EchoPredictor()

    async def scenario():
        batcher = MicroBatcher(fake.predict, max_batch=32, max_wait_ms=60_000)
        batcher.start()

        async def slow_reader():
            with batcher.arriving():
                await asyncio.sleep(0.2)  # its body still on the way
                items = ["late"]
            return await batcher.submit(items)

        reading = asyncio.ensure_future(slow_reader())
        await asyncio.sleep(0)
        first = await batcher.submit(["early"])
        await reading
        await batcher.stop()
        return first

    assert run(scenario())[0]["echo"] == "early"
    assert fake.calls == [["early", "late"]]


def test_batches_stop_at_max_batch_items_and_a_larger_request_goes_alone():
    fake = EchoPredictor()

    async def scenario():
        batcher = MicroBatcher(fake.predict, max_batch=3, max_wait_ms=100)
        batcher.start()
        await asyncio.gather(batcher.submit(["a", "b"]), batcher.submit(["c", "d"]),
                             batcher.submit(["e", "f", "g", "h"]))
        await batcher.stop()

    run(scenario())
    assert fake.calls == [["a", "b"], ["c", "d"], ["e", "f", "g", "h"]]


def test_a_bad_input_fails_only_its_own_request():
    fake = EchoPredictor()

    async def scenario():
        batcher = MicroBatcher(fake.predict, max_batch=32, max_wait_ms=100)
        batcher.start()
        answers = await asyncio.gather(batcher.submit(["a"]), batcher.submit(["bad"]),
                                       batcher.submit(["c"]), return_exceptions=True)
        await batcher.stop()
        return answers

    first, second, third = run(scenario())
    assert first[0]["echo"] == "a" and third[0]["echo"] == "c"
    assert isinstance(second, AnnotuneError)
    assert fake.calls == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


def test_a_full_queue_refuses_and_a_stopped_batcher_refuses():
    fake = EchoPredictor()
    fake.gate.clear()

    async def scenario():
        batcher = MicroBatcher(fake.predict, max_batch=1, max_wait_ms=0, max_queue=3)
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.to_thread(fake.entered.wait, 10)  # "a" is in the model, not queued
        queued = asyncio.ensure_future(batcher.submit(["b", "c", "d"]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(["e"])
        fake.gate.set()
        stopping = asyncio.ensure_future(batcher.stop())
        await asyncio.sleep(0)
        with pytest.raises(ShuttingDown):
            await batcher.submit(["f"])
        await stopping  # queued work is still answered
        return await running, await queued, batcher.stats.as_dict()

    running, queued, stats = run(scenario())
    assert [p["echo"] for p in running + queued] == ["a", "b", "c", "d"]
    assert stats["rejected_queue_full"] == 1


def test_the_time_the_model_was_busy_is_counted():
    # A load test tells a model kept busy from one waiting for its next batch by this count.
    fake = EchoPredictor()
    fake.gate.clear()

    async def scenario():
        batcher = MicroBatcher(fake.predict, max_batch=8, max_wait_ms=0)
        batcher.start()
        answering = asyncio.ensure_future(batcher.submit(["🍕"]))
        await asyncio.to_thread(fake.entered.wait, 10)
        await asyncio.sleep(0.2)  # the model "runs" at least this long
        fake.gate.set()
        await answering
        await batcher.stop()
        return batcher.stats.as_dict()

    stats = run(scenario())
    assert 0.2 <= stats["model_seconds"] < 30


def test_limits_that_cannot_work_are_refused():
    with pytest.raises(AnnotuneError, match="max batch must be at least 1"):
        ServeLimits(max_batch=0)
    with pytest.raises(AnnotuneError, match="could never run"):
        ServeLimits(max_items=50, max_queue=10)


def test_loopback_hosts():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.org"]))


# -- through the application ---------------------------------------------------------------------

def test_concurrent_requests_become_one_predictor_call():
    fake = EchoPredictor()
    app = create_app(fake, ServeLimits(max_batch=32, max_wait_ms=1))
    fake.calls.clear()  # the warm-up call at start
    with TestClient(app) as client:
        fake.gate.clear()
        fake.entered.clear()
        results = {}

        def post(text):
            results[text] = client.post("/predict", json={"input": text})

        first = threading.Thread(target=post, args=(HARD_TEXTS[0],))
        first.start()
        assert fake.entered.wait(10)
        others = [threading.Thread(target=post, args=(text,)) for text in HARD_TEXTS[1:]]
        for thread in others:
            thread.start()
        wait_until(lambda: app.state.batcher.queued_items == len(others))
        fake.gate.set()
        for thread in [first, *others]:
            thread.join(30)
    assert [len(call) for call in fake.calls] == [1, len(others)]
    for text, response in results.items():
        assert response.status_code == 200
        assert response.json()["prediction"]["echo"] == text  # exactly, every code point


def test_a_full_queue_is_429_and_a_stopped_server_is_503():
    fake = EchoPredictor()
    app = create_app(fake, ServeLimits(max_batch=1, max_wait_ms=0, max_queue=2, max_items=2))
    client = TestClient(app)
    with client:
        fake.gate.clear()
        fake.entered.clear()
        results = []
        threads = [threading.Thread(target=lambda t=t: results.append(
            client.post("/predict", json={"inputs": t}))) for t in (["a"], ["b", "c"])]
        threads[0].start()
        assert fake.entered.wait(10)
        threads[1].start()
        wait_until(lambda: app.state.batcher.queued_items == 2)
        refused = client.post("/predict", json={"inputs": ["d"]})
        fake.gate.set()
        for thread in threads:
            thread.join(30)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert "over 2 inputs are waiting" in refused.json()["error"]
    assert sorted(r.status_code for r in results) == [200, 200]
    after_stop = client.post("/predict", json={"inputs": ["e"]})
    assert after_stop.status_code == 503
    assert after_stop.json() == {"error": "the server is stopping"}
    assert client.get("/health").status_code == 503


def test_uvicorn_stops_gracefully_finishing_requests_in_flight():
    fake = EchoPredictor()
    limits = ServeLimits(max_batch=32, max_wait_ms=1, graceful_timeout_s=20)
    app = create_app(fake, limits)
    fake.calls.clear()
    server = make_server(app, limits)
    sock = bind("127.0.0.1", 0)
    url = url_of(sock)
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    serving.start()
    wait_until(lambda: server.started)
    fake.gate.clear()
    fake.entered.clear()
    answers = {}

    def post(text):
        with httpx.Client(base_url=url, timeout=30) as client:
            answers[text] = client.post("/predict", json={"inputs": [text]})

    first = threading.Thread(target=post, args=(HARD_TEXTS[0],))
    first.start()
    assert fake.entered.wait(10)
    others = [threading.Thread(target=post, args=(text,)) for text in HARD_TEXTS[1:]]
    for thread in others:
        thread.start()
    wait_until(lambda: app.state.batcher.queued_items == len(others))
    server.should_exit = True  # what Ctrl-C and SIGTERM do
    wait_until(lambda: not any(s.is_serving() for s in server.servers))
    with pytest.raises(httpx.ConnectError):  # no new connections once stopping
        httpx.get(url + "/health", timeout=5)
    fake.gate.set()
    for thread in [first, *others]:
        thread.join(30)
    serving.join(30)
    assert not serving.is_alive()
    assert {text: r.status_code for text, r in answers.items()} == dict.fromkeys(HARD_TEXTS, 200)
    assert {text: r.json()["predictions"][0]["echo"] for text, r in answers.items()} == {
        text: text for text in HARD_TEXTS}
    assert [len(call) for call in fake.calls] == [1, len(others)]


def test_serve_without_its_extra_names_the_extra(tmp_path):
    code = ("import sys\nsys.modules['starlette'] = None\n"
            "from annotune.core.cli import main\n"
            f"sys.exit(main(['serve', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: the module 'starlette' is not installed: it is needed for serving bundles "
        "over HTTP — install it with: pip install 'annotune[serve]'"]
