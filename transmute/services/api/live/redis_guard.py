"""Calls to Redis that fail fast and then stay out of the way: Redis is a help, never a need.

Each call gives up after TIMEOUT seconds; after a failure the next calls are skipped for PAUSE_AFTER_FAILURE
seconds (a stopped Redis costs a request no time), and the first call that works again runs `on_recovery`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("transmute.live")

TIMEOUT = 1.0
"""Seconds a Redis call may take before the caller falls back."""
PAUSE_AFTER_FAILURE = 1.0
"""Seconds during which calls are skipped after one failed."""
REDIS_FAILURES = (RedisError, OSError, TimeoutError)
"""What a call to an away (stopped, unreachable, overloaded) Redis raises."""


class Unavailable(Exception):
    """Redis did not answer (or is paused after failing): the caller falls back."""


def connect(url: str) -> aioredis.Redis:
    """A client that fails fast: no retries, one-second timeouts."""
    return aioredis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                             retry=Retry(NoBackoff(), 0), health_check_interval=10)


class RedisGuard:
    """Runs Redis calls with the rules above."""

    def __init__(self, what: str, on_recovery: Callable[[], Awaitable[None]] | None = None) -> None:
        self.what = what
        self.on_recovery = on_recovery
        self._paused_until = 0.0
        self._failed = False

    async def call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """The call's result; Unavailable (logged once per outage) when Redis is away or paused."""
        if time.monotonic() < self._paused_until:
            raise Unavailable
        try:
            result = await asyncio.wait_for(call(), TIMEOUT * 2)
        except REDIS_FAILURES as exc:
            if not self._failed:
                log.warning("Redis is away (%s); %s", exc, self.what)
            self._failed = True
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
            raise Unavailable from exc
        if self._failed:
            self._failed = False
            log.warning("Redis answers again: %s no longer", self.what)
            if self.on_recovery is not None:
                await self.on_recovery()
        return result
