"""Run a blocking core call off the GUI thread and deliver its result as a Qt signal."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger("annotune.desktop")


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _Signals):
        super().__init__()
        self.fn = fn
        self.signals = signals
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as error:  # handed to the GUI thread, which shows it
            log.error("background task failed\n%s", traceback.format_exc())
            self._emit(self.signals.failed, error)
            return
        self._emit(self.signals.done, result)

    @staticmethod
    def _emit(signal: Any, value: Any) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the receiver is gone (the app is shutting down): nothing to tell
            pass


_alive: set[_Signals] = set()


def run_in_background(fn: Callable[[], Any], on_done: Callable[[Any], None],
                      on_failed: Callable[[BaseException], None]) -> _Signals:
    """Call ``fn()`` on the global thread pool; the callbacks run on the GUI thread."""
    signals = _Signals()
    _alive.add(signals)  # keep the QObject alive until a callback ran

    def finish(callback: Callable[[Any], None]) -> Callable[[Any], None]:
        def handler(value: Any) -> None:
            _alive.discard(signals)
            callback(value)
        return handler

    signals.done.connect(finish(on_done))
    signals.failed.connect(finish(on_failed))
    QThreadPool.globalInstance().start(_Task(fn, signals))
    return signals
