"""The hub: one per gateway process. It hands every change of a task to the streams watching it, so no stream
reads the database on its own.

Changes reach it from this process (the projector applying an event, a cancel, a retry, a delete), from Redis
(the other replicas' changes), and, in distributed mode while Redis is off or away, from one poller: every
`events_poll_interval` it reads all the watched tasks in one query and offers them (a watch drops what it
has already seen). While Redis is on, the poller still reads them every SAFETY_NET_POLL seconds: a replica
that could not publish a change (its Redis call failed) is heard late, never not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence

from transmute.core.models import Task
from transmute.services.api.live.watch import Signal, Watch

log = logging.getLogger("transmute.live")

POLL_BATCH = 500
"""Task ids per query of the poller."""
SAFETY_NET_POLL = 5.0
"""Seconds between two reads of the watched tasks while Redis carries the changes."""


_hubs: weakref.WeakSet[Hub] = weakref.WeakSet()


def end_all_streams() -> None:
    """The server is stopping: end this process's open streams now, rather than at the end of the graceful
    shutdown's wait, with no final event (their clients reconnect with Last-Event-ID, to another replica)."""
    for hub in list(_hubs):
        hub.close_all()


class Hub:
    """The open watches by task id, the cap on them, and the poller."""

    def __init__(self, max_streams: int) -> None:
        self.max_streams = max_streams
        self._watches: dict[str, set[Watch]] = {}
        self._count = 0
        _hubs.add(self)

    @property
    def open_streams(self) -> int:
        return self._count

    @property
    def full(self) -> bool:
        """Whether this process holds `max_streams` open streams already (the route answers 503)."""
        return self._count >= self.max_streams

    @contextlib.contextmanager
    def watch(self, task_id: str) -> Iterator[Watch]:
        """A watch on `task_id` for as long as the block runs."""
        watch = Watch(task_id)
        self._watches.setdefault(task_id, set()).add(watch)
        self._count += 1
        try:
            yield watch
        finally:
            self._count -= 1
            watches = self._watches.get(task_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[task_id]

    def watched(self) -> list[str]:
        return list(self._watches)

    def watches(self, task_id: str) -> bool:
        return task_id in self._watches

    def offer(self, task: Task) -> None:
        """Hand a task's state to every stream watching it."""
        for watch in self._watches.get(task.id, ()):
            watch.offer(task)

    def gone(self, task_id: str) -> None:
        """The task was deleted: its streams send a final `cancelled` event (unless they sent their final event
        already), then end."""
        for watch in self._watches.get(task_id, ()):
            watch.close(Signal.DELETED)

    def close_all(self) -> None:
        """End every stream without a final event (the gateway stops: a server waits for open responses to end)."""
        for watches in self._watches.values():
            for watch in watches:
                watch.close(Signal.STOPPING)

    async def poll(self, read_many: Callable[[Sequence[str]], Awaitable[dict[str, Task]]]) -> None:
        """Read every watched task once (POLL_BATCH ids a query) and offer what was read; a task not found was
        deleted (`gone`)."""
        ids = self.watched()
        for start in range(0, len(ids), POLL_BATCH):
            batch = ids[start:start + POLL_BATCH]
            found = await read_many(batch)
            for task_id in batch:
                task = found.get(task_id)
                if task is None:
                    self.gone(task_id)
                else:
                    self.offer(task)

    async def run_poller(self, read_many: Callable[[Sequence[str]], Awaitable[dict[str, Task]]],
                         interval: float, wanted: Callable[[], bool]) -> None:
        """Poll every `interval` seconds while `wanted()` says so (Redis off or away), else every
        SAFETY_NET_POLL seconds, until cancelled."""
        last = 0.0
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if not self._watches or (not wanted() and now - last < SAFETY_NET_POLL):
                continue
            last = now
            try:
                await self.poll(read_many)
            except Exception:  # the database away: the streams wait (heartbeats go on), the next tick tries again
                log.warning("could not read the watched tasks; trying again in %g s", interval, exc_info=True)
