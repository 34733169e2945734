"""The cancels a worker process has heard of, and the runs they stop."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

REMEMBER_SECONDS = 24 * 3600.0
"""How long a cancel is kept: long enough for a cancelled task's convert message to come out of a long queue."""
REMEMBER_AT_MOST = 100_000
"""Cancels kept at most (the oldest are forgotten first): a few MB whatever the traffic."""


class Stop:
    """A run's cancel flag for ffmpeg and the back-off waits: set when either the process shuts down or the run
    is cancelled (it answers `is_set` and `wait` like a threading.Event)."""

    def __init__(self, shutdown: threading.Event) -> None:
        self.shutdown = shutdown
        self.cancelled = threading.Event()

    def is_set(self) -> bool:
        return self.cancelled.is_set() or self.shutdown.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                break
            self.cancelled.wait(left)
        return self.is_set()


class Cancels:
    """Which task runs (task id, attempt) were cancelled, and the stop flags of the runs going on in this process.

    A cancel for a run this process has not started yet is remembered, so its convert message is skipped when
    it arrives; one for a run going on here sets that run's Stop (ffmpeg is killed within its poll interval).
    """

    def __init__(self, *, remember: float = REMEMBER_SECONDS, at_most: int = REMEMBER_AT_MOST) -> None:
        self.remember = remember
        self.at_most = at_most
        self._lock = threading.Lock()
        self._cancelled: OrderedDict[tuple[str, int], float] = OrderedDict()
        self._running: dict[tuple[str, int], Stop] = {}

    def cancel(self, task_id: str, attempt: int) -> bool:
        """Record the cancel; True when a run of this process was stopped by it."""
        run = (task_id, attempt)
        now = time.monotonic()
        with self._lock:
            self._cancelled[run] = now + self.remember
            self._cancelled.move_to_end(run)
            # Oldest first: the ones past their time, then any beyond the bound.
            while self._cancelled and (len(self._cancelled) > self.at_most
                                       or next(iter(self._cancelled.values())) < now):
                self._cancelled.popitem(last=False)
            stop = self._running.get(run)
        if stop is not None:
            stop.cancelled.set()
        return stop is not None

    def is_cancelled(self, task_id: str, attempt: int) -> bool:
        with self._lock:
            expiry = self._cancelled.get((task_id, attempt))
        return expiry is not None and expiry > time.monotonic()

    def in_flight(self) -> int:
        """How many runs go on in this process now."""
        with self._lock:
            return len(self._running)

    @contextmanager
    def running(self, task_id: str, attempt: int, shutdown: threading.Event, *,
                also: tuple[int, ...] = ()) -> Iterator[Stop]:
        """The run's stop flag, known to `cancel` while the run goes on (set at once if it was cancelled already).
        A cancel naming one of the attempts `also` stops it too (a stalled run's retry: the gateway may still
        have known the task by the stalled attempt)."""
        runs = [(task_id, number) for number in (attempt, *also)]
        stop = Stop(shutdown)
        with self._lock:
            for run in runs:
                self._running[run] = stop
        if any(self.is_cancelled(task_id, number) for number in (attempt, *also)):
            stop.cancelled.set()
        try:
            yield stop
        finally:
            with self._lock:
                for run in runs:
                    if self._running.get(run) is stop:
                        del self._running[run]
