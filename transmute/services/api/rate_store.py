"""The rate limit's counters in Redis, so all gateway replicas count one limit (TRANSMUTE_REDIS_URL).

While Redis is away each process counts in its own memory (the limit is then per process), and a request is
never refused because of Redis alone.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore

from transmute.services.api.live.redis_guard import RedisGuard, Unavailable

RATE_LIMIT_STORE = "rate_limit"
"""The store name Litestar's rate-limit middleware uses."""


class SharedRateStore(Store):
    """Redis first; this process's memory while Redis is away."""

    def __init__(self, shared: RedisStore) -> None:
        self.shared = shared
        self.local = MemoryStore()
        self.guard = RedisGuard("the rate limit is counted per process")

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        try:
            await self.guard.call(lambda: self.shared.set(key, value, expires_in))
        except Unavailable:
            await self.local.set(key, value, expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        try:
            return await self.guard.call(lambda: self.shared.get(key, renew_for))
        except Unavailable:
            return await self.local.get(key, renew_for)

    async def delete(self, key: str) -> None:
        try:
            await self.guard.call(lambda: self.shared.delete(key))
        except Unavailable:
            await self.local.delete(key)

    async def delete_all(self) -> None:
        await self.local.delete_all()
        with contextlib.suppress(Unavailable):
            await self.guard.call(self.shared.delete_all)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        try:
            return await self.guard.call(lambda: self.shared.expires_in(key))
        except Unavailable:
            return await self.local.expires_in(key)
