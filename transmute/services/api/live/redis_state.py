"""The state gateway replicas share through Redis (TRANSMUTE_REDIS_URL): each task's latest state in a hash
`transmute:task:<id>` (kept `redis_cache_ttl` seconds after its last change), and every change published on the
channel `transmute:task-changes`, which each replica's hub hears.

Redis is a help, never a need (live/redis_guard.py): when it is away callers fall back to the database and the
poller. When it answers again the cached states are dropped, since changes made while it was away missed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import redis.asyncio as aioredis

from transmute.core.models import Task
from transmute.services.api.live.redis_guard import (
    PAUSE_AFTER_FAILURE,
    REDIS_FAILURES,
    TIMEOUT,
    RedisGuard,
    Unavailable,
)
from transmute.services.api.live.watch import state_version

log = logging.getLogger("transmute.live")

KEY_PREFIX = "transmute:task:"
CHANNEL = "transmute:task-changes"
# Writes only a newer state (two replicas' projectors may apply one task's events at once), then publishes it.
# Versions exceed Lua's exact numbers: compared as digit strings (longer is larger).
_PUT = """
local old = redis.call('HGET', KEYS[1], 'v')
local new = ARGV[1]
if old and (#old > #new or (#old == #new and old >= new)) then return 0 end
redis.call('HSET', KEYS[1], 'v', new, 't', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"""


class Change(msgspec.Struct):
    """One message on the channel: a task's new state, or None when it was deleted."""

    task_id: str
    task: Task | None


class RedisState:
    """The cache and the channel, with the fall-back rules above."""

    def __init__(self, client: aioredis.Redis, ttl: float) -> None:
        self.client = client
        self.ttl = max(1, int(ttl))
        self.subscribed = False
        """Whether this process hears the channel now (else the hub's poller stands in)."""
        self._put = client.register_script(_PUT)
        self.guard = RedisGuard("task states are read from the database", on_recovery=self._drop_cache)

    async def _drop_cache(self) -> None:
        try:
            async for keys in _batches(self.client.scan_iter(match=f"{KEY_PREFIX}*", count=500)):
                await self.client.unlink(*keys)
        except REDIS_FAILURES as exc:
            log.warning("could not drop the cached task states: %s", exc)

    async def get(self, task_id: str) -> Task | None:
        """The cached state of a task, or None (not cached, or Redis away)."""
        try:
            raw = await self.guard.call(lambda: self.client.hget(KEY_PREFIX + task_id, "t"))
        except Unavailable:
            return None
        if not isinstance(raw, bytes):
            return None
        try:
            return msgspec.json.decode(raw, type=Task)
        except msgspec.ValidationError:  # written by another transmute version: the database answers
            return None

    async def put(self, task: Task) -> None:
        """Cache the task's state (unless a newer one is cached) and tell every replica."""
        body = msgspec.json.encode(task)
        change = msgspec.json.encode(Change(task_id=task.id, task=task))
        with contextlib.suppress(Unavailable):
            await self.guard.call(lambda: self._put(keys=[KEY_PREFIX + task.id],
                                                    args=[str(state_version(task)), body, self.ttl, CHANNEL, change]))

    async def forget(self, task_id: str) -> None:
        """Drop a deleted task and tell every replica."""
        change = msgspec.json.encode(Change(task_id=task_id, task=None))

        async def both() -> None:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(KEY_PREFIX + task_id)
                pipe.publish(CHANNEL, change)
                await pipe.execute()

        with contextlib.suppress(Unavailable):
            await self.guard.call(both)

    async def listen(self, on_change: Callable[[Change], None], on_subscribed: Callable[[], Awaitable[None]]) -> None:
        """Hand every change on the channel to `on_change`, for ever: across Redis outages, re-subscribing
        each second (while unsubscribed, `subscribed` is False). `on_subscribed` runs after each subscribe, for
        what changed while no one listened."""
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await asyncio.wait_for(pubsub.subscribe(CHANNEL), TIMEOUT * 2)
                self.subscribed = True
                await on_subscribed()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        on_change(msgspec.json.decode(message["data"], type=Change))
                    except msgspec.DecodeError:
                        log.warning("ignored a message on %s that is no task change", CHANNEL)
            except REDIS_FAILURES as exc:
                if self.subscribed:
                    log.warning("lost the Redis channel (%s); polling the database until it is back", exc)
                self.subscribed = False
            finally:
                self.subscribed = False
                with contextlib.suppress(REDIS_FAILURES):
                    await asyncio.shield(pubsub.aclose())
            await asyncio.sleep(PAUSE_AFTER_FAILURE)

    async def close(self) -> None:
        await self.client.aclose()


async def _batches(keys: AsyncIterator[bytes], size: int = 500) -> AsyncIterator[list[bytes]]:
    batch: list[bytes] = []
    async for key in keys:
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
