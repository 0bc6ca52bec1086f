"""Load-test `annotune serve` on loopback: micro-batching against one Predictor call per request.

Two servers run the same int8 bundle: `annotune serve` as shipped (requests of concurrent
clients batched into one Predictor call) and the same server with --max-batch 1 (every request
its own call: the plain loop). Clients send SST-2 dev sentences, one per request
(``{"input": sentence}``), over keep-alive HTTP/1.1 connections, at 1, 8 and 32 concurrent
clients; every run is bounded by --requests and --seconds. The two servers take turns level by
level, round after round (the machine's speed drifts: see docs/benchmarks.md), and the figures
are medians over rounds: answers per second, p50 and p99 latency, errors. Then the batching
server takes 32 clients again with --malformed broken requests mixed in (bad JSON, wrong
fields, lone surrogates, oversized bodies...): each must be refused with a 4xx, every good
request answered, and the server still healthy after.

Beside wall time, every run reports CPU per answer of each side (the server from
/proc/<pid>/stat, the client from its own process time: both share the cores, so the client's
CPU is taken from the server it measures), the server's mean batch and the share of the run's
wall time its model was running (from GET /metadata). CPU per answer moves far less with other
programs on the machine than answers per second do.

Traffic goes to 127.0.0.1 only. The client is a small asyncio HTTP/1.1 client (a few lines of
protocol, so the client's own cost stays low on a 2-core machine); the server is uvicorn.

    python bench/serve_load.py                      # builds an int8 bundle (fresh head)
    python bench/serve_load.py --bundle demo-project/bundle-int8
    python bench/serve_load.py --bundle demo-project/bundle-int8 --breakdown

``--breakdown`` measures where an answer's CPU goes instead: request parsing, tokenizing, the
model per sentence at batch 1 and at batch 32 with and without length buckets, response
encoding, the application called directly (no HTTP), and the HTTP server and client per
request with a model that costs nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    REPO_ROOT,
    check_data_dir,
    default_base_model,
    hardware,
    print_json_line,
    print_table,
    quiet_transformers,
    resolve_base_model,
)

HOST = "127.0.0.1"
LEVELS = (1, 8, 32)
SERVERS = {"batched": [], "one call per request": ["--max-batch", "1", "--max-wait-ms", "0"]}
BODY_LIMIT = 1 << 16  # the servers' --max-body-bytes: oversized malformed bodies pass it


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path,
                        default=REPO_ROOT.parent / "shared" / "datasets")
    parser.add_argument("--bundle", type=Path, default=None,
                        help="int8 bundle to serve (default: export one from the bundled model "
                             "with a fresh two-label head)")
    parser.add_argument("--base-model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)),
                        help="concurrent clients, comma-separated")
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests per run at most")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per run at most")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of turns")
    parser.add_argument("--malformed", type=int, default=1000,
                        help="broken requests mixed into the last run")
    parser.add_argument("--threads", type=int, default=None,
                        help="the servers' onnxruntime threads (default: the Predictor's)")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead of the load test, measure where an answer's CPU goes: "
                             "request parsing, tokenizing, the model at batch 1 and 32 (with and "
                             "without length buckets), response encoding, the HTTP stack alone")
    return parser.parse_args(argv)


# -- the client ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    kind: str  # "good" or "malformed"
    status: int  # 0: the connection failed
    seconds: float


@dataclass
class Budget:
    left: int
    deadline: float
    outcomes: list[Outcome] = field(default_factory=list)

    def take(self) -> bool:
        if self.left <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.left -= 1
        return True


def request_bytes(body: bytes, path: str = "/predict", method: str = "POST") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one HTTP/1.1 response; return its status, body and whether the server closes."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, closing = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            closing = True
    return status, await reader.readexactly(length), closing


async def one_client(port: int, requests: list[tuple[str, bytes]], budget: Budget) -> None:
    """Send requests one after the other over a kept-alive connection (reopened if closed)."""
    reader = writer = None
    n = 0
    while budget.take():
        kind, payload = requests[n % len(requests)]
        n += 1
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            assert reader is not None
            writer.write(payload)
            status, _, closing = await read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            status, closing = 0, True
        budget.outcomes.append(Outcome(kind, status, time.perf_counter() - started))
        if closing and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def load(port: int, clients: int, requests: list[tuple[str, bytes]], count: int,
               seconds: float) -> tuple[list[Outcome], float]:
    budget = Budget(count, time.perf_counter() + seconds)
    started = time.perf_counter()
    offsets = [len(requests) * i // clients for i in range(clients)]  # clients send different texts
    await asyncio.gather(*(one_client(port, requests[o:] + requests[:o], budget)
                           for o in offsets))
    return budget.outcomes, time.perf_counter() - started


def measured_run(server: Server, clients: int, requests: list[tuple[str, bytes]], count: int,
                 seconds: float) -> dict[str, Any]:
    """Run one load and summarise it with the CPU each side spent per answer and the batches.

    The client (this process) and the server share the machine's cores, so the client's CPU
    per answer is what it takes away from the server it measures.
    """
    before = server.batching()
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    outcomes, wall = asyncio.run(load(server.port, clients, requests, count, seconds))
    client_cpu = time.process_time() - client_cpu
    server_after = server.cpu_seconds()
    after = server.batching()
    summary = summarise(outcomes, wall)
    answers = max(1, summary["answered"])
    calls = after["calls"] - before["calls"]
    summary["mean_batch"] = round((after["items"] - before["items"]) / calls, 2) if calls else None
    # The share of the run's wall time the model was running; the rest had no call running:
    # no request was waiting, or the next batch was not handed over yet.
    summary["model_busy"] = round((after["model_seconds"] - before["model_seconds"]) / wall, 3)
    summary["client_cpu_ms"] = round(client_cpu * 1000 / answers, 3)
    if server_cpu is not None and server_after is not None:
        summary["server_cpu_ms"] = round((server_after - server_cpu) * 1000 / answers, 3)
        summary["client_share"] = round(client_cpu / max(1e-9, client_cpu + server_after
                                                         - server_cpu), 3)
    return summary


def summarise(outcomes: list[Outcome], wall: float) -> dict[str, Any]:
    good = sorted(o.seconds for o in outcomes if o.kind == "good" and o.status == 200)
    failed_good = sum(1 for o in outcomes if o.kind == "good" and o.status != 200)
    malformed = [o for o in outcomes if o.kind == "malformed"]

    def percentile(q: float) -> float | None:
        return round(good[min(len(good) - 1, int(q * len(good)))] * 1000, 2) if good else None

    return {"answered": len(good), "per_s": round(len(good) / wall, 1),
            "p50_ms": percentile(0.5), "p99_ms": percentile(0.99), "errors": failed_good,
            "malformed_sent": len(malformed),
            "malformed_4xx": sum(1 for o in malformed if 400 <= o.status < 500),
            "malformed_other": sum(1 for o in malformed if not 400 <= o.status < 500)}


# -- requests ------------------------------------------------------------------------------------

def good_requests(sentences: list[str]) -> list[tuple[str, bytes]]:
    return [("good", request_bytes(json.dumps({"input": s}).encode("utf-8"))) for s in sentences]


def malformed_requests(count: int) -> list[tuple[str, bytes]]:
    """Return ``count`` broken requests of many kinds, each a 4xx for a correct server."""
    kinds = [
        request_bytes(b"{not json"),
        request_bytes(b""),
        request_bytes(b'{"inputs": "not a list"}'),
        request_bytes(b'{"inputs": [{"txt": "wrong field"}]}'),
        request_bytes(b'{"inputs": [42, null]}'),
        request_bytes(b'{"input": "half a pizza \\ud83c"}'),
        request_bytes(b"\xff\xfe\x00{}"),
        request_bytes(b"[" * 5000),
        request_bytes(json.dumps({"inputs": ["x"] * 300}).encode()),  # over --max-items
        request_bytes(b'{"inputs": ["' + b"y" * (BODY_LIMIT + 10) + b'"]}'),  # over the body limit
        request_bytes(b"", path="/predict", method="GET"),
        request_bytes(b'{"input": "a"}', path="/nowhere"),
    ]
    return [("malformed", kinds[n % len(kinds)]) for n in range(count)]


# -- servers -------------------------------------------------------------------------------------

class Server:
    """`annotune serve` in a child process on a free loopback port."""

    def __init__(self, bundle: Path, options: list[str], threads: int | None):
        command = [sys.executable, "-m", "annotune.core.cli", "serve", str(bundle), "--host",
                   HOST, "--port", "0", "--max-body-bytes", str(BODY_LIMIT), *options]
        if threads:
            command += ["--threads", str(threads)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if " at http://" not in line:
            self.process.kill()
            raise RuntimeError(f"the server did not start: {line}{self.process.stderr.read()}")
        self.port = int(line.rsplit(":", 1)[1])
        # The address is printed before uvicorn listens on it: wait until it answers.
        deadline = time.perf_counter() + 60
        while not self.healthy():
            if time.perf_counter() > deadline or self.process.poll() is not None:
                self.process.kill()
                raise RuntimeError(f"the server never answered: {self.process.stderr.read()}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float | None:
        """Return the server process's CPU time so far (user + system), Linux only."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def batching(self) -> dict[str, Any]:
        """Return the server's batching counts (GET /metadata)."""
        async def ask() -> dict[str, Any]:
            reader, writer = await asyncio.open_connection(HOST, self.port)
            writer.write(request_bytes(b"", path="/metadata", method="GET"))
            _, body, _ = await read_response(reader)
            writer.close()
            return dict(json.loads(body)["batching"])
        return asyncio.run(asyncio.wait_for(ask(), 10))

    def healthy(self) -> bool:
        async def ask() -> int:
            reader, writer = await asyncio.open_connection(HOST, self.port)
            writer.write(request_bytes(b"", path="/health", method="GET"))
            status, _, _ = await read_response(reader)
            writer.close()
            return status
        try:
            return asyncio.run(asyncio.wait_for(ask(), 10)) == 200
        except (OSError, TimeoutError):
            return False

    def stop(self) -> str:
        self.process.terminate()
        out, err = self.process.communicate(timeout=60)
        return (out.strip().splitlines() or [""])[-1] + err.strip()


# -- main ----------------------------------------------------------------------------------------

def build_bundle(folder: Path, base_model: str, samples: list[str]) -> Path:
    """Export an int8 bundle of the bundled model with a fresh two-label head."""
    from inference_speed import make_run

    from annotune.core.export import export_run
    quiet_transformers()
    run = make_run(folder, base_model, samples)
    return export_run(run, folder / "int8", quantize=True).bundle_dir


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    levels = [int(n) for n in args.levels.split(",")]
    folder = check_data_dir(args.data_dir, "sst2")
    with (folder / "dev.tsv").open(newline="", encoding="utf-8") as handle:
        sentences = [row["sentence"] for row in
                     csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    if args.breakdown:
        if args.bundle is None:
            raise SystemExit("--breakdown measures a given bundle: add --bundle")
        loads = [round(os.getloadavg()[0], 2)]
        figures = breakdown(args.bundle, sentences, args.requests)
        loads.append(round(os.getloadavg()[0], 2))
        print_table(f"CPU ms per sentence or request, int8 bundle, SST-2 dev sentences (load "
                    f"average {min(loads)}-{max(loads)})", ["stage", "CPU ms"],
                    [[name, value] for name, value in figures.items()])
        print_json_line("serve_breakdown", {"hardware": hardware(), "figures": figures,
                                            "load_average": loads})
        return
    good = good_requests(sentences)
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        bundle = args.bundle
        if bundle is None:
            print("  exporting an int8 bundle ...", file=sys.stderr, flush=True)
            bundle = build_bundle(Path(tmp), resolve_base_model(args.base_model
                                                               or default_base_model()),
                                  sentences)
        servers: dict[str, Server] = {}
        runs: dict[str, dict[int, list[dict[str, Any]]]] = {
            name: {level: [] for level in levels} for name in SERVERS}
        loads = [round(os.getloadavg()[0], 2)]
        try:
            for name, options in SERVERS.items():  # each one stopped below if the next fails
                servers[name] = Server(bundle, options, args.threads)
            for server in servers.values():  # warm-up: first calls are slow
                asyncio.run(load(server.port, 4, good, 200, 10))
            order = list(servers)
            for round_number in range(1, args.rounds + 1):
                print(f"  round {round_number} of {args.rounds} ...", file=sys.stderr, flush=True)
                for level in levels:
                    order = order[::-1]
                    for name in order:
                        runs[name][level].append(measured_run(servers[name], level, good,
                                                              args.requests, args.seconds))
                loads.append(round(os.getloadavg()[0], 2))
            print("  malformed requests mixed in ...", file=sys.stderr, flush=True)
            mixed = good[:args.malformed] + malformed_requests(args.malformed)
            random.Random(0).shuffle(mixed)
            outcomes, wall = asyncio.run(load(servers["batched"].port, 32, mixed,
                                              len(mixed), max(args.seconds, 60)))
            abuse = summarise(outcomes, wall)
            abuse["healthy_after"] = servers["batched"].healthy()
        finally:
            stopped = {name: server.stop() for name, server in servers.items()}
    results = {name: {level: median_run(per_level[level]) for level in levels}
               for name, per_level in runs.items()}
    rows = []
    for level in levels:
        base, batched = results["one call per request"][level], results["batched"][level]
        ratio = batched["per_s"] / base["per_s"] if base["per_s"] else None
        for name in SERVERS:
            r = results[name][level]
            rows.append([level, name, r["per_s"], r["p50_ms"], r["p99_ms"], r["errors"],
                         f"{ratio:.2f}x" if name == "batched" and ratio else "",
                         r["mean_batch"], r["model_busy"], r.get("server_cpu_ms"),
                         r["client_cpu_ms"], r.get("client_share")])
    info = hardware()
    print_table(f"annotune serve on loopback, int8 bundle, one SST-2 sentence per request "
                f"({info['cpu']}, {info['cpu_cores']} cores; medians of {args.rounds} rounds; "
                f"load average {min(loads)}-{max(loads)})",
                ["clients", "server", "answers/s", "p50 ms", "p99 ms", "errors",
                 "batched / one call", "mean batch", "model busy", "server CPU ms/answer",
                 "client CPU ms/answer", "client CPU share"], rows)
    print_table(f"{args.malformed} malformed requests among {args.malformed} good ones, "
                "32 clients, batched server",
                ["good answered", "good failed", "malformed 4xx", "malformed other",
                 "healthy after"],
                [[abuse["answered"], abuse["errors"], abuse["malformed_4xx"],
                  abuse["malformed_other"], abuse["healthy_after"]]])
    print_json_line("serve_load", {"hardware": info, "bundle": str(args.bundle or "fresh head"),
                                   "levels": levels, "results": results, "runs": runs,
                                   "malformed": abuse, "load_average": loads,
                                   "servers_at_stop": stopped})


# -- where an answer's CPU goes -----------------------------------------------------------------

def cpu_per(repeats: int, count: int, work: Any) -> float:
    """Return the least process CPU milliseconds per unit of ``repeats`` calls of ``work``.

    Process CPU counts onnxruntime's threads too; the least of the repeats is the one that
    other programs on the machine disturbed least.
    """
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return round(best * 1000 / count, 3)


# The bundle's Predictor answering every input with one ready prediction: HTTP, JSON and
# batching alone, at no model cost.
STUB_SERVER = """
import sys
from annotune.core.inference import Predictor
from annotune.core.serve.limits import ServeLimits
from annotune.core.serve.server import serve

class Instant(Predictor):
    def predict(self, items):
        items = list(items)
        if not hasattr(self, "ready"):
            self.ready = Predictor.predict(self, ["ready"])[0]
        return [self.ready for _ in items]

serve(sys.argv[1], "127.0.0.1", 0, ServeLimits(max_batch=int(sys.argv[2])), load=Instant)
"""


class StubServer(Server):
    """The server with a model that costs nothing: what HTTP, JSON and batching cost alone."""

    def __init__(self, bundle: Path, max_batch: int):
        self.process = subprocess.Popen(
            [sys.executable, "-c", STUB_SERVER, str(bundle), str(max_batch)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._wait_until_listening()


def application_cpu(predictor: Any, sentence: str, concurrent: int, requests: int) -> float:
    """Return the application's CPU ms per request, called directly: no HTTP, no sockets.

    Starlette's routing, the request handler and the batcher, with a model that answers at no
    cost; ``concurrent`` requests at a time share a batch.
    """
    from annotune.core.serve.app import create_app

    class Instant:
        def __init__(self) -> None:
            self.task, self.settings = predictor.task, predictor.settings
            self.labels, self.manifest = predictor.labels, predictor.manifest
            self.ready = predictor.predict([sentence])[0]

        def predict(self, items: list[Any]) -> list[dict[str, Any]]:
            return [self.ready for _ in items]

    app = create_app(Instant())
    body = json.dumps({"input": sentence}).encode("utf-8")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/predict", "raw_path": b"/predict",
             "query_string": b"", "root_path": "", "client": (HOST, 1), "server": (HOST, 2),
             "headers": [(b"host", HOST.encode()), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}

    async def one() -> None:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({**scope, "state": {}}, receive, send)
        assert sent[0]["status"] == 200, sent

    async def measure() -> float:
        lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def ignore(message: dict[str, Any]) -> None:
            pass

        await lifespan.put({"type": "lifespan.startup"})
        running = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                             "state": {}}, lifespan.get, ignore))
        await asyncio.sleep(0.1)
        rounds = max(1, requests // concurrent)
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for _ in range(rounds):
                await asyncio.gather(*(one() for _ in range(concurrent)))
            best = min(best, time.process_time() - started)
        await lifespan.put({"type": "lifespan.shutdown"})
        await running
        return round(best * 1000 / (rounds * concurrent), 3)

    return asyncio.run(measure())


def breakdown(bundle: Path, sentences: list[str], requests: int) -> dict[str, Any]:
    """Measure each stage of an answer in CPU milliseconds per sentence (or per request)."""
    from annotune.core import features
    from annotune.core.inference import Predictor
    from annotune.core.serve.app import task_inputs
    from annotune.core.serve.payloads import parse_body

    predictor = Predictor(bundle)
    inputs = task_inputs(predictor)
    sample = sentences[:256]
    batches = [sample[i:i + 32] for i in range(0, len(sample), 32)]
    examples = [{predictor.task.fields[0]: s} for s in sample]
    bodies = [json.dumps({"input": s}).encode("utf-8") for s in sample]
    predictions = predictor.predict(sample)
    figures: dict[str, Any] = {}
    figures["parse and check a request"] = cpu_per(
        5, len(bodies), lambda: [parse_body(b, inputs, 256) for b in bodies])
    figures["tokenize, per sentence"] = cpu_per(5, len(sample), lambda: [
        predictor.task.encode(predictor.tokenizer, examples[i:i + 32], None, predictor.settings)
        for i in range(0, len(examples), 32)])
    figures["model, batch 1, per sentence"] = cpu_per(
        3, len(sample), lambda: [predictor.predict([s]) for s in sample])
    figures["model, batch 32 length-bucketed, per sentence"] = cpu_per(
        3, len(sample), lambda: [predictor.predict(b) for b in batches])
    bucketed_padding = features.MAX_PADDING
    features.MAX_PADDING = float("inf")  # one run per batch, padded to its longest sentence
    try:
        figures["model, batch 32 padded to the longest, per sentence"] = cpu_per(
            3, len(sample), lambda: [predictor.predict(b) for b in batches])
    finally:
        features.MAX_PADDING = bucketed_padding
    figures["encode a response"] = cpu_per(5, len(predictions), lambda: [
        json.dumps({"prediction": p}, ensure_ascii=False).encode("utf-8")
        for p in predictions])
    for concurrent in (32, 1):
        figures[f"application alone (no HTTP), {concurrent} at a time, per request"] = \
            application_cpu(predictor, sample[0], concurrent, 2000)
    good = good_requests(sentences)
    for max_batch in (32, 1):
        stub = StubServer(bundle, max_batch)
        try:
            asyncio.run(load(stub.port, 4, good, 200, 10))
            run = measured_run(stub, 32, good, requests, 30)
        finally:
            stub.stop()
        figures[f"HTTP server, instant model, max batch {max_batch}, per request"] = \
            run.get("server_cpu_ms")
        figures[f"client, per request (instant model, max batch {max_batch})"] = \
            run["client_cpu_ms"]
    return figures


def median_run(per_round: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the round with the median throughput (its latencies belong to it)."""
    ranked = sorted(per_round, key=lambda r: r["per_s"])
    return {**ranked[len(ranked) // 2], "per_s_rounds": [r["per_s"] for r in per_round]}


if __name__ == "__main__":
    main()
