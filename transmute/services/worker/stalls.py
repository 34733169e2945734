"""The stall watchdog: stops a conversion whose progress has not moved for TRANSMUTE_STALL_TIMEOUT seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from transmute.services.worker.cancels import Stop


class StallWatch:
    """Watches a run's progress from a thread of its own: when it stands still for `timeout` seconds, the run's
    Stop is set (its ffmpeg killed within a poll interval) and `stalled` describes where it stood."""

    def __init__(self, timeout: float, stop: Stop, report: Callable[[float], None]) -> None:
        self.timeout = timeout
        self.stop = stop
        self.report = report
        self.percent = 0.0
        self.stalled: str | None = None
        """Where the run stood when it was stopped for stalling (None while it has not)."""
        self._moved_at = time.monotonic()
        self._ended = threading.Event()

    def progress(self, percent: float) -> None:
        """The run's progress callback: a change of value is a move; then it is reported on."""
        if percent != self.percent:
            self.percent, self._moved_at = percent, time.monotonic()
        self.report(percent)

    def _watch(self) -> None:
        pause = min(1.0, self.timeout / 4)
        while not self._ended.wait(pause):
            still = time.monotonic() - self._moved_at
            if still >= self.timeout:
                self.stalled = f"at {self.percent:.0f}% of the conversion (no progress for {still:.0f} s)"
                self.stop.cancelled.set()
                return

    @contextmanager
    def watching(self) -> Iterator[StallWatch]:
        self._moved_at = time.monotonic()
        thread = threading.Thread(target=self._watch, name="transmute-stall-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._ended.set()
            thread.join(2)
