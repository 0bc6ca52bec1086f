"""Stop requests in the training child process: Ctrl-C (SIGINT), SIGTERM, Ctrl+Break.

Until the training loop first asks whether to stop, nothing the child does needs finishing
(imports, model loading, tokenization, the precision probe): a request raises StopRequested
at once in the main thread, instead of waiting for work that never looks at a flag. From the
loop's first question on, a checkpoint may be half written between two questions, so a
request only sets the flag, and the loop stops at its next step or evaluation batch (the
parent kills a child that takes longer than its grace period). Short sections that must not
be cut in two (creating the run, writing an event line) defer the exception to their end.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = ("SIGINT", "SIGTERM", "SIGBREAK")  # SIGBREAK: Windows' Ctrl+Break


class StopRequested(BaseException):
    """A stop request, raised where the child is before the training loop runs.

    A BaseException, as KeyboardInterrupt is, so that library code catching Exception
    (optional imports, retries) cannot swallow it.
    """


class StopControl:
    """Receive stop signals; be the loop's ``should_stop``; raise at once before the loop."""

    def __init__(self) -> None:
        self.requested = False
        self.raises = True  # until the loop asks, or the run's end is being recorded
        self._deferred = 0

    def install(self) -> None:
        """Handle the stop signals of this platform in this (main) thread."""
        for name in SIGNALS:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self.handle)

    def __call__(self) -> bool:
        """Answer the loop's question; from now on requests wait for the loop."""
        self.raises = False
        return self.requested

    def handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self.raises and not self._deferred:
            raise StopRequested()

    def finishing(self) -> None:
        """Stop raising: the run's end is being recorded, which a request must not cut short."""
        self.raises = False

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a request that arrives inside the block until its end, then raise it."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1
        if self.requested and self.raises and not self._deferred:
            raise StopRequested()
