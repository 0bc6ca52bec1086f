"""The bounds a server keeps so that no client, nor many together, can exhaust its memory."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from annotune.core.errors import AnnotuneError


@dataclass(frozen=True)
class ServeLimits:
    """Batching and admission settings of one server (the CLI fills them; defaults for CPUs).

    ``max_batch`` items go to one Predictor call at most; a batch waits ``max_wait_ms`` at
    most for more requests once the oldest queued request arrived. ``max_queue`` items may
    wait at once (more: 429), a body holds ``max_body_bytes`` at most and ``max_items``
    inputs at most (more: 413). Over ``max_connections`` connections and requests at once,
    uvicorn answers 503 itself: with the body bound, that caps what requests can hold in memory.
    """

    max_batch: int = 32
    max_wait_ms: float = 2.0
    max_queue: int = 1024
    max_body_bytes: int = 1 << 20
    max_items: int = 256
    max_connections: int = 256
    graceful_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_queue", "max_body_bytes", "max_items",
                     "max_connections"):
            if getattr(self, name) < 1:
                raise AnnotuneError(f"the server's {name.replace('_', ' ')} must be at least 1, "
                                    f"not {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.graceful_timeout_s < 0:
            raise AnnotuneError("the batching window and the shutdown timeout cannot be "
                                "negative")
        if self.max_items > self.max_queue:
            raise AnnotuneError(f"a request may hold {self.max_items} inputs but only "
                                f"{self.max_queue} may wait: such a request could never run",
                                hint="raise the queue size or lower the inputs per request")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
