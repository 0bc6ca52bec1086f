"""Progress events of the training steps: loss, learning rate, speed and time left."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from annotune.core.events import Emit, Progress


class ProgressReport:
    """Emit a progress event after a step, throttled, because reading the loss waits for the GPU.

    The first and the last step always report; the loss shown is the mean over the steps
    since the previous report.
    """

    def __init__(self, emit: Emit, device: torch.device,
                 total_steps: int, interval: float):
        self.emit, self.device = emit, device
        self.total_steps, self.interval = total_steps, interval
        self.started = self.last_report = time.perf_counter()
        self._reset()

    def _reset(self) -> None:
        self.loss, self.steps, self.samples = torch.zeros((), device=self.device), 0, 0

    def after_step(self, step: int, epoch: int, loss: torch.Tensor, samples: int,
                   learning_rate: Callable[[], float]) -> None:
        """Count step ``step`` (``samples`` examples); report when it is time."""
        self.loss += loss
        self.steps += 1
        self.samples += samples
        now = time.perf_counter()
        if now - self.last_report < self.interval and step not in (1, self.total_steps):
            return
        self.emit(Progress(
            event="progress", step=step, total_steps=self.total_steps, epoch=epoch,
            loss=round(self.loss.item() / self.steps, 6), learning_rate=learning_rate(),
            eta_s=round((now - self.started) / step * (self.total_steps - step), 1),
            samples_per_s=round(self.samples / max(now - self.last_report, 1e-9), 1)))
        self.last_report = now
        self._reset()
