"""The state of one `wait`, shared by both clients: the live event stream while the server offers it, the
status route otherwise (a server without the events route answers 404 there)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import msgspec

from transmute.client.errors import WaitTimeout
from transmute.client.models import StatusResponse
from transmute.client.protocol import error_of

FINAL_EVENTS = frozenset({"done", "failed", "cancelled"})
NO_EVENTS_STATUSES = frozenset({404, 405, 501, 503})
"""Answers of the events route after which `wait` polls the status instead: no such route (an older server),
or no room for one more stream."""
MAX_STREAM_FAILURES = 3
"""Streams that broke or ended early (without the final event) before `wait` polls instead."""
STREAM_READ_TIMEOUT = 45.0
"""Seconds without a byte (the server sends a comment every 15 s) after which a stream counts as broken."""

Progress = Callable[[StatusResponse], None]
"""Called with each new status a wait sees (a change of state or progress)."""


class Follow:
    """Where one wait stands: its deadline, the last status and event id seen, how to learn the next."""

    def __init__(self, task_id: str, timeout: float | None, on_progress: Progress | None, poll_interval: float) -> None:
        self.task_id = task_id
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.on_progress = on_progress
        self.poll_interval = poll_interval
        self.use_events = True
        self.failures = 0
        self.last_event_id: str | None = None
        self.last: StatusResponse | None = None

    @property
    def events_url(self) -> str:
        return f"/api/tasks/{self.task_id}/events/"

    def stream_headers(self) -> dict[str, str]:
        return {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}

    def stream_timeout(self) -> httpx.Timeout:
        read = STREAM_READ_TIMEOUT if self.deadline is None else max(0.1, min(STREAM_READ_TIMEOUT, self.remaining()))
        return httpx.Timeout(30.0, read=read)

    def refused(self, response: httpx.Response) -> None:
        """An events route that answered other than 200 (its body read): poll from now on, or raise its error."""
        if response.status_code in NO_EVENTS_STATUSES:
            self.use_events = False
            return
        raise error_of(response)

    def event(self, name: str, data: str, event_id: str | None) -> StatusResponse | None:
        """A status from one server-sent event (None for an event that carries none)."""
        if event_id:
            self.last_event_id = event_id
        try:
            status = msgspec.json.decode(data, type=StatusResponse)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        self.seen(status)
        if name in FINAL_EVENTS and not status.is_finished:  # the event's name is the word of the server
            return msgspec.structs.replace(status, is_finished=True, is_active=False)
        return status

    def broke(self) -> None:
        """A stream failed or ended before the final event: try it again, a few times, then poll."""
        self.failures += 1
        if self.failures >= MAX_STREAM_FAILURES:
            self.use_events = False

    def seen(self, status: StatusResponse) -> StatusResponse:
        """Note a status; tell the caller when its state or progress moved."""
        previous, self.last = self.last, status
        if self.on_progress is not None and (previous is None or (previous.status, previous.progress)
                                             != (status.status, status.progress)):
            self.on_progress(status)
        return status

    def remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def check(self) -> None:
        """Raise WaitTimeout once the deadline has passed."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise WaitTimeout(self.task_id, self.timeout or 0.0, self.last)

    def pause(self) -> float:
        """Seconds to sleep before the next poll."""
        return max(0.0, min(self.poll_interval, self.remaining()))
