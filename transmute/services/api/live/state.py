"""`LiveState`: the one object the routes and the projector use for live task state.

Reads: Redis's cached state when Redis is on and holds the task, else the task store. Changes: handed to this
process's hub, and, with Redis, cached and published for the other replicas. Nothing here ever fails a request
because of Redis: every Redis problem ends in the database answering instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from transmute.core.models import Task
from transmute.services.api.live.hub import Hub
from transmute.services.api.live.watch import state_version
from transmute.settings import LiveConfig
from transmute.store import TaskStore

if TYPE_CHECKING:  # the Redis client comes with the `distributed` extra only
    from transmute.services.api.live.redis_state import Change, RedisState

log = logging.getLogger("transmute.live")

__all__ = ["LiveState", "state_version"]


class LiveState:
    """The hub, the optional Redis state, and the background tasks that feed the hub."""

    def __init__(self, store: TaskStore, config: LiveConfig, *, shared_process: bool,
                 redis: RedisState | None = None) -> None:
        """`shared_process`: embedded mode, where every change goes through this process (no poller needed)."""
        self.store = store
        self.config = config
        self.hub = Hub(config.events_max_streams)
        self.redis = redis
        self.shared_process = shared_process
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the poller (distributed mode) and the Redis listener (Redis on)."""
        if not self.shared_process:
            self._tasks.append(asyncio.create_task(
                self.hub.run_poller(self._read_many, self.config.events_poll_interval, self._poll_wanted)))
        if self.redis is not None:
            self._tasks.append(asyncio.create_task(self.redis.listen(self._heard, self._catch_up)))

    async def stop(self) -> None:
        self.hub.close_all()  # no final event: the streams' clients reconnect to another replica
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.close()

    def _poll_wanted(self) -> bool:
        return self.redis is None or not self.redis.subscribed

    async def _read_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        return await self.store.get_many(task_ids)

    async def _catch_up(self) -> None:
        """Subscribed (again): read the watched tasks once, for the changes no one heard meanwhile."""
        try:
            await self.hub.poll(self._read_many)
        except Exception:
            log.warning("could not read the watched tasks after subscribing", exc_info=True)

    def _heard(self, change: Change) -> None:
        if change.task is None:
            self.hub.gone(change.task_id)
        else:
            self.hub.offer(change.task)

    async def read(self, task_id: str, *, owner: str | None = None) -> Task | None:
        """The task's current state (visible to `owner` when given): Redis's copy when it has one, else the store's."""
        if self.redis is not None:
            cached = await self.redis.get(task_id)
            # Only a live task is read from the cache: a finished one may since have expired, been swept or
            # been retried by a replica whose announcement was lost, which the store knows.
            if cached is not None and not cached.status.is_finished:
                return cached if owner is None or cached.owner == owner else None
        return await self.store.get(task_id, owner=owner)

    async def announce(self, task: Task) -> None:
        """A task's state changed here: tell this process's streams and, with Redis, every replica."""
        self.hub.offer(task)
        if self.redis is not None:
            await self.redis.put(task)

    async def changed(self, task_id: str) -> None:
        """The projector applied an event: read the task once and announce it. Never raises (logged).

        Without Redis and with no stream of this process watching the task, no one would hear it: not even read.
        """
        if self.redis is None and not self.hub.watches(task_id):
            return
        try:
            task = await self.store.get(task_id)
            if task is not None:
                await self.announce(task)
        except Exception:
            log.warning("task %s: could not announce its change", task_id, exc_info=True)

    async def forget(self, task_id: str) -> None:
        """A task was deleted: its streams everywhere send a final `cancelled` event (unless they sent their final
        event already) and end."""
        self.hub.gone(task_id)
        if self.redis is not None:
            await self.redis.forget(task_id)
