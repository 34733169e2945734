"""One open stream's mailbox: only the newest state of its task is kept, so a slow reader costs one slot."""

from __future__ import annotations

import asyncio
import enum

from transmute.core.models import Task


class Signal(enum.Enum):
    """What `Watch.next` gives instead of a state."""

    QUIET = "quiet"
    """Nothing changed for the whole wait: time for a heartbeat."""
    DELETED = "deleted"
    """The task was deleted: the stream sends its final `cancelled` event (a delete cancels an unfinished task
    first), then ends."""
    STOPPING = "stopping"
    """The gateway is stopping: the stream ends without a final event (its client reconnects with Last-Event-ID
    to another replica, which knows how the task stands)."""


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
        self._closed: Signal | None = None
        self._changed = asyncio.Event()

    def offer(self, task: Task) -> None:
        """Keep `task` if it is newer than what the stream has or holds (older or equal states are dropped; so is
        any state once the watch is closed: the stream ends after what it held then)."""
        if self._closed is not None:
            return
        version = state_version(task)
        held = state_version(self._latest) if self._latest is not None else self.sent_version
        if version > max(held, self.sent_version):
            self._latest = task
            self._changed.set()

    def close(self, reason: Signal) -> None:
        """End the stream: `reason` is DELETED (the task was deleted) or STOPPING (the gateway stops). A delete
        is news the stream's client can get nowhere else (the task answers 404 from now on): it is kept whichever
        close comes first."""
        if self._closed is not Signal.DELETED:
            self._closed = reason
        self._changed.set()

    async def next(self, timeout: float) -> Task | Signal:
        """The newest unsent state, or QUIET after `timeout` seconds without one; once closed, the state it held
        then (a final state offered just before a close is never lost), and after it the close's reason."""
        if self._latest is None and self._closed is None:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return Signal.QUIET
        self._changed.clear()
        task, self._latest = self._latest, None
        if task is not None:
            self.sent_version = state_version(task)
            return task
        return self._closed if self._closed is not None else Signal.QUIET
