"""One open stream's mailbox: only the newest state of its task is kept, so a slow reader costs one slot."""

from __future__ import annotations

import asyncio
import enum

from transmute.core.models import Task


class Signal(enum.Enum):
    """What `Watch.next` gives instead of a state."""

    QUIET = "quiet"
    """Nothing changed for the whole wait: time for a heartbeat."""
    GONE = "gone"
    """The task was deleted, or the gateway is stopping: the stream ends."""


def state_version(task: Task) -> int:
    """A number that grows with every change of the task's state, the same on every replica: the SSE event id.

    Within a run the store's `last_seq` grows with each applied event (a retry starts a run with `last_seq` 0 and
    one more `attempt`, hence the attempt in the high digits); a cancel keeps `last_seq`, so an ended task counts
    one more.
    """
    return task.attempt * 10**19 + task.last_seq + (1 if task.status.is_finished else 0)


class Watch:
    """The newest state not yet sent to one stream, and an event set when it changes."""

    __slots__ = ("_changed", "_closed", "_latest", "sent_version", "task_id")

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.sent_version = -1
        self._latest: Task | None = None
        self._closed = False
        self._changed = asyncio.Event()

    def offer(self, task: Task) -> None:
        """Keep `task` if it is newer than what the stream has or holds (older or equal states are dropped)."""
        version = state_version(task)
        held = state_version(self._latest) if self._latest is not None else self.sent_version
        if version > max(held, self.sent_version):
            self._latest = task
            self._changed.set()

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    async def next(self, timeout: float) -> Task | Signal:
        """The newest unsent state, or QUIET after `timeout` seconds without one, or GONE once closed."""
        if self._latest is None and not self._closed:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return Signal.QUIET
        self._changed.clear()
        if self._closed:
            return Signal.GONE
        task, self._latest = self._latest, None
        if task is None:
            return Signal.QUIET
        self.sent_version = state_version(task)
        return task
