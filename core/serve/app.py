"""The HTTP application around one Predictor: routes, status codes, start-up and shutdown.

    POST /predict       {"inputs": [...]} -> {"predictions": [...]}; {"input": x} -> {"prediction"}
    GET  /health        {"status": "ok"} (503 while stopping)
    GET  /metadata      task, fields, labels, model sha256, limits, batching counts
    GET  /openapi.json  the OpenAPI document (core.serve.schema)

Refusals are JSON ``{"error": "..."}`` with the status that says whose move it is: 400 a
body or input to fix (the message names it), 413 a body or list too large, 429 too many
inputs waiting (Retry-After), 503 stopping. A body is read only up to its limit, so a huge
upload costs the server nothing but the refusal.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from annotune.core.serve.batching import MicroBatcher, QueueFull, ShuttingDown, is_client_error
from annotune.core.serve.limits import ServeLimits
from annotune.core.serve.payloads import BadRequest, TaskInputs, parse_body
from annotune.core.serve.schema import openapi_document

SAMPLE_TEXT = "annotune serves this model over HTTP."
RETRY_AFTER_S = "1"


def bundle_metadata(predictor: Any, limits: ServeLimits) -> dict[str, Any]:
    """Describe the served bundle from its checked manifest: task, labels, files' sha256."""
    manifest = predictor.manifest
    files = manifest.get("files", {})
    model = str(manifest["model"])

    def described(name: str) -> dict[str, Any]:
        entry = files.get(name, {})
        return {"file": name, "sha256": entry.get("sha256"), "bytes": entry.get("bytes")}

    task = predictor.task
    metadata = {
        "task": task.name, "title": task.title, "fields": list(task.fields),
        "optional_fields": list(getattr(task, "optional_fields", ())),
        "labels": list(predictor.labels), "settings": predictor.settings.to_dict(),
        "model": described(model),
        "dtype": (manifest.get("onnx") or {}).get("dtype"),
        "quantization": manifest.get("quantization"),
        "annotune_version": manifest.get("annotune_version"),
        "created": manifest.get("created"),
        "files": {name: entry.get("sha256") for name, entry in files.items()},
        "limits": limits.to_dict(),
    }
    if manifest.get("model_data") in files:
        metadata["weights"] = described(str(manifest["model_data"]))
    return metadata


def task_inputs(predictor: Any) -> TaskInputs:
    task = predictor.task
    return TaskInputs(task.title, tuple(task.fields),
                      tuple(getattr(task, "optional_fields", ())))


def sample_item(inputs: TaskInputs) -> Any:
    """Return an input every task reads: the same short text in each field."""
    if len(inputs.fields) == 1:
        return SAMPLE_TEXT
    return {name: SAMPLE_TEXT for name in inputs.fields}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the body up to ``limit`` bytes; raise BadRequest(413) as soon as it is over."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest(400, f"the Content-Length header '{declared}' is not a number"
                             ) from None
        if size > limit:
            raise BadRequest(413, f"the body is {size} bytes; this server reads at most {limit}: "
                                  "send fewer or shorter inputs per request")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BadRequest(413, f"the body is over {limit} bytes, the most this server reads: "
                                  "send fewer or shorter inputs per request")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(predictor: Any, limits: ServeLimits | None = None) -> Starlette:
    """Build the application that serves ``predictor`` (a loaded Predictor, or a stand-in)."""
    limits = limits or ServeLimits()
    inputs = task_inputs(predictor)
    metadata = bundle_metadata(predictor, limits)
    # The warm-up prediction also gives the schema its prediction shape and example.
    sample = predictor.predict([sample_item(inputs)])[0]
    document = openapi_document(metadata, inputs, sample, limits)
    batcher = MicroBatcher(predictor.predict, max_batch=limits.max_batch,
                           max_wait_ms=limits.max_wait_ms, max_queue=limits.max_queue)

    async def predict(request: Request) -> JSONResponse:
        try:
            with batcher.arriving():
                body = await _read_body(request, limits.max_body_bytes)
                parsed = parse_body(body, inputs, limits.max_items)
            predictions = await batcher.submit(parsed.items)
        except BadRequest as refusal:
            return _error(refusal.status, refusal.message)
        except QueueFull:
            return _error(429, f"over {limits.max_queue} inputs are waiting; retry in a moment",
                          headers={"Retry-After": RETRY_AFTER_S})
        except ShuttingDown:
            return _error(503, "the server is stopping", headers={"Connection": "close"})
        except Exception as error:  # raised by the prediction of this request's inputs
            if is_client_error(error):
                return _error(400, str(error))
            return _error(500, f"prediction failed: {type(error).__name__}: {error}")
        if parsed.single:
            return JSONResponse({"prediction": predictions[0]})
        return JSONResponse({"predictions": predictions})

    async def health(request: Request) -> JSONResponse:
        if batcher.closing:
            return JSONResponse({"status": "stopping"}, status_code=503)
        return JSONResponse({"status": "ok", "task": metadata["task"],
                             "queued_inputs": batcher.queued_items})

    async def describe(request: Request) -> JSONResponse:
        return JSONResponse({**metadata, "batching": batcher.stats.as_dict()})

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        message = {404: f"no endpoint {request.url.path}: use POST /predict, GET /health, "
                        "GET /metadata or GET /openapi.json",
                   405: f"{request.method} is not allowed on {request.url.path}"}
        return _error(error.status_code, message.get(error.status_code, str(error.detail)),
                      headers=getattr(error, "headers", None))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        batcher.start()
        yield
        # uvicorn has stopped accepting and waited for the requests in flight; what is still
        # queued is answered before the worker thread ends.
        await batcher.stop()

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"]),
                            Route("/health", health, methods=["GET"]),
                            Route("/metadata", describe, methods=["GET"]),
                            Route("/openapi.json", openapi, methods=["GET"])],
                    exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    app.state.batcher = batcher
    app.state.metadata = metadata
    return app
