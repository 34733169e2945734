"""Report a task's changes of state as TaskEvents over the broker, throttling progress."""

from __future__ import annotations

import logging
import time

import dramatiq
import msgspec

from transmute.core.models import (
    EVENTS_QUEUE,
    PROJECT_EVENT_ACTOR,
    EventKind,
    TaskEvent,
    TaskResult,
    next_seq,
    utcnow,
)
from transmute.services.broker import BROKER_UNREACHABLE, SEND_BACKOFF, send

log = logging.getLogger("transmute.worker")

FINAL_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0, 15.0)
"""Pauses between attempts to send a task's last event: about a minute and a half in all."""


class TaskReporter:
    """Sends one task's events; progress at most every `interval` seconds and only when it moved."""

    def __init__(self, broker: dramatiq.Broker, task_id: str, *, attempt: int = 1, interval: float = 0.5) -> None:
        self.broker = broker
        self.task_id = task_id
        self.attempt = attempt
        self.interval = interval
        self._last_progress = -1
        self._last_sent = 0.0

    def _send(self, kind: EventKind, *, backoff: tuple[float, ...] = SEND_BACKOFF, **fields) -> None:
        event = TaskEvent(task_id=self.task_id, seq=next_seq(), kind=kind, at=utcnow(), attempt=self.attempt,
                          **fields)
        send(self.broker, EVENTS_QUEUE, PROJECT_EVENT_ACTOR, msgspec.to_builtins(event), backoff=backoff)

    def started(self, file_size: int | None = None) -> None:
        self._send("started", file_size=file_size)

    def progress(self, percent: float) -> None:
        value = max(0, min(99, int(percent)))
        now = time.monotonic()
        if value <= self._last_progress or now - self._last_sent < self.interval:
            return
        self._last_progress, self._last_sent = value, now
        try:
            # Progress is a hint: a broker hiccup must not stop the conversion (the next one will get through).
            self._send("progress", progress=value, backoff=())
        except BROKER_UNREACHABLE as exc:
            log.warning("task %s: progress event not sent: %s", self.task_id, exc)

    def done(self, result: TaskResult) -> None:
        # The result is stored: hold on longer for the broker rather than convert again.
        self._send("done", result=result, progress=100, backoff=FINAL_BACKOFF)

    def failed(self, message: str) -> None:
        self._send("failed", error=message, backoff=FINAL_BACKOFF)

    def stalled(self, note: str) -> None:
        """The run stalled and is sent again as the next attempt (the store queues the task as that attempt)."""
        self._send("stalled", error=note, backoff=FINAL_BACKOFF)

    def cancelled(self) -> None:
        # The store says `cancelled` already (the gateway applied the cancel); this confirms where it stopped.
        self._send("cancelled")
