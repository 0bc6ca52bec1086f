"""Run the application under uvicorn: bind, say where, serve, stop gracefully.

The socket is bound here rather than by uvicorn, so a port taken or a host that does not
resolve is an AnnotuneError before anything starts, and port 0 (any free port) is printed
with the number the system chose. Ctrl-C or SIGTERM stops accepting connections, lets the
requests in flight and everything queued finish (up to the graceful timeout), then exits 0.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from annotune.core.errors import AnnotuneError
from annotune.core.serve.app import create_app
from annotune.core.serve.limits import ServeLimits

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def is_loopback(host: str) -> bool:
    """Say whether ``host`` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any address
        return False


def bind(host: str, port: int) -> socket.socket:
    """Return a socket bound to ``host``:``port``, or raise AnnotuneError saying why not."""
    if not 0 <= port <= 65535:
        raise AnnotuneError(f"port {port} is not a port number", hint="use 1 to 65535, or 0 "
                            "for any free port")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise AnnotuneError(f"cannot find the address of host '{host}': {error.strerror}",
                            hint="give an address such as 127.0.0.1") from None
    family, kind, protocol, _, address = infos[0]
    sock = socket.socket(family, kind, protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise AnnotuneError(f"cannot listen on {host} port {port}: {error.strerror}",
                            hint="another program may use that port: choose another, or 0 for "
                                 "any free port") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class GracefulServer(uvicorn.Server):
    """uvicorn's server, ending with status 0 after a signal instead of dying of it.

    uvicorn re-raises the signal it caught once it has shut down gracefully; the command
    line then reports a clean stop of its own.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def make_server(app: Any, limits: ServeLimits, access_log: bool = False) -> GracefulServer:
    """Return a uvicorn server for ``app`` with the limits' concurrency and shutdown timeout."""
    config = uvicorn.Config(
        app, log_level="warning", access_log=access_log, lifespan="on",
        limit_concurrency=limits.max_connections,
        timeout_graceful_shutdown=max(1, round(limits.graceful_timeout_s)),
        server_header=False)
    return GracefulServer(config)


def serve(bundle: Path, host: str = "127.0.0.1", port: int = 8000,
          limits: ServeLimits | None = None, threads: int | None = None,
          access_log: bool = False, out: TextIO | None = None,
          load: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Serve ``bundle`` until Ctrl-C or SIGTERM; return the batching counts at the end."""
    out = out or sys.stdout
    limits = limits or ServeLimits()
    if not is_loopback(host):
        print(f"warning: serving on {host}: every machine that reaches this one can send "
              "requests, and there is no authentication; put it behind a proxy that checks "
              "who calls, or serve on 127.0.0.1", file=sys.stderr)
    if load is None:
        from annotune.core.inference import Predictor

        load = Predictor
    predictor = load(bundle, threads=threads)
    sock = bind(host, port)
    try:
        app = create_app(predictor, limits)
        server = make_server(app, limits, access_log)
        dtype = (predictor.manifest.get("onnx") or {}).get("dtype", "float32")
        print(f"serving {bundle} ({predictor.task.title}, {dtype}) at {url_of(sock)}", file=out)
        print("POST /predict {\"inputs\": [...]}; GET /health, /metadata, /openapi.json; "
              "Ctrl-C stops", file=out, flush=True)
        server.run(sockets=[sock])
    finally:
        sock.close()
    stats = app.state.batcher.stats.as_dict()
    print(f"stopped after {stats['jobs']} requests ({stats['items']} inputs in "
          f"{stats['calls']} model calls)", file=out, flush=True)
    return stats
