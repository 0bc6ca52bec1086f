"""Turn the requests of concurrent clients into few Predictor calls, one at a time, off the loop.

Each request is a job of one or more items. Jobs wait in a bounded queue; a single worker
thread takes the oldest jobs, up to ``max_batch`` items, makes one Predictor call for all of
them and hands every job its own slice of the predictions. While the model runs, the event
loop keeps reading requests, so under load the next batch is already waiting when a call
ends. A batch that is not full waits for more only while other requests are being read
(``arriving``), and at most ``max_wait_ms`` after its oldest job arrived: a lone client is
never kept waiting for company that is not coming.

One call at a time on one thread, because onnxruntime already spreads one call over the
cores: two calls at once would fight over them. A batch that fails on a bad input (a
task's own checks, such as NER tokens that do not match their text) is redone job by job,
so the error reaches the request that caused it and the others still get predictions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from annotune.core.errors import AnnotuneError

Predict = Callable[[list[Any]], list[dict[str, Any]]]


class QueueFull(Exception):
    """Raised when a job would make more items wait than the queue holds (HTTP 429)."""


class ShuttingDown(Exception):
    """Raised for jobs submitted after the server began to stop (HTTP 503)."""


@dataclass
class _Job:
    items: list[Any]
    future: asyncio.Future[list[dict[str, Any]]]
    arrived: float = field(default_factory=time.perf_counter)


@dataclass
class BatcherStats:
    """Counts since start: jobs and items answered, calls made, refusals."""

    jobs: int = 0
    items: int = 0
    calls: int = 0
    rejected_full: int = 0
    failed_jobs: int = 0
    largest_batch: int = 0
    model_seconds: float = 0.0  # wall time inside Predictor calls: how busy the model was

    def as_dict(self) -> dict[str, Any]:
        mean = self.items / self.calls if self.calls else 0.0
        return {"jobs": self.jobs, "items": self.items, "calls": self.calls,
                "mean_batch": round(mean, 2), "largest_batch": self.largest_batch,
                "rejected_queue_full": self.rejected_full, "failed_jobs": self.failed_jobs,
                "model_seconds": round(self.model_seconds, 4)}


class MicroBatcher:
    """Collect jobs on the event loop, run them in batches on one worker thread.

    Call ``start()`` inside the running loop, ``submit(items)`` from request handlers and
    ``stop()`` at shutdown: it refuses new jobs and finishes those already queued.
    """

    def __init__(self, predict: Predict, max_batch: int = 32, max_wait_ms: float = 2.0,
                 max_queue: int = 1024):
        self._predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue = max_queue
        self.stats = BatcherStats()
        self._jobs: deque[_Job] = deque()
        self._queued_items = 0
        self._arriving = 0
        self._closing = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queued_items(self) -> int:
        return self._queued_items

    @property
    def closing(self) -> bool:
        return self._closing

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Mark a request being read: a batch that is not full waits for it (briefly)."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1
            if self._wake is not None:
                self._wake.set()  # the window may close now: nobody else is on the way

    def start(self) -> None:
        """Start the collecting task on the running loop and the worker thread."""
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="annotune-predict")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def submit(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        """Queue one request's items; return their predictions in order.

        Raises QueueFull, ShuttingDown, or the AnnotuneError that the request's own items
        caused.
        """
        if self._closing or self._wake is None:
            raise ShuttingDown()
        if self._queued_items + len(items) > self.max_queue:
            self.stats.rejected_full += 1
            raise QueueFull()
        job = _Job(list(items), asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._queued_items += len(job.items)
        self._wake.set()
        return await job.future

    async def stop(self) -> None:
        """Refuse new jobs, answer every queued one, then end the worker thread."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # -- the collecting task ---------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._fill_window()
            batch = self._take_batch()
            if not batch:
                continue
            results = await loop.run_in_executor(self._executor, self._answer, batch)
            for job, result in zip(batch, results, strict=True):
                if job.future.done():  # its request was cancelled while the model ran
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    async def _fill_window(self) -> None:
        """Wait for requests being read until the batch is full or the oldest job waited enough."""
        assert self._wake is not None
        deadline = self._jobs[0].arrived + self.max_wait_s
        while (self._arriving and self._queued_items < self.max_batch
               and not self._closing):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Job]:
        """Take the oldest jobs up to ``max_batch`` items (one larger job goes alone)."""
        batch: list[_Job] = []
        items = 0
        while self._jobs:
            job = self._jobs[0]
            if batch and items + len(job.items) > self.max_batch:
                break
            self._jobs.popleft()
            self._queued_items -= len(job.items)
            if job.future.done():  # cancelled while it waited: nobody reads its answer
                continue
            batch.append(job)
            items += len(job.items)
        return batch

    # -- the worker thread -----------------------------------------------------------------
    def _answer(self, batch: list[_Job]) -> list[list[dict[str, Any]] | BaseException]:
        """Predict a batch in one call; on a failure, job by job so it reaches its own job."""
        items = [item for job in batch for item in job.items]
        self.stats.calls += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(items))
        started = time.perf_counter()
        try:
            predictions = self._predict(items)
        except Exception as error:
            if len(batch) == 1:
                self.stats.failed_jobs += 1
                return [error]
            self.stats.calls -= 1  # counted again, job by job
            return [self._answer([job])[0] for job in batch]
        finally:
            self.stats.model_seconds += time.perf_counter() - started
        answers: list[list[dict[str, Any]] | BaseException] = []
        start = 0
        for job in batch:
            answers.append(predictions[start:start + len(job.items)])
            start += len(job.items)
        self.stats.jobs += len(batch)
        self.stats.items += len(items)
        return answers


def is_client_error(error: BaseException) -> bool:
    """Say whether a failed job was the request's fault (400) rather than the server's (500)."""
    return isinstance(error, AnnotuneError)
