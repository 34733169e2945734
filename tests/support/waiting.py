"""Waiting on a condition with a deadline, instead of sleeping for a time that should be enough."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """The condition did not come true before the deadline."""


def wait_for(condition: Callable[[], T], timeout: float, what: str | Callable[[], str], interval: float = 0.2) -> T:
    """Call `condition` every `interval` s until it returns something true, and return that; fail the test
    after `timeout` s, saying what was awaited (`what`, or what it returns then: a log read at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimedOut(f"timed out after {timeout:g} s waiting for {what if isinstance(what, str) else what()}")
        time.sleep(interval)


async def eventually(condition: Callable[[], Awaitable[T]], timeout: float, what: str, interval: float = 0.1) -> T:
    """Await `condition()` every `interval` s until it gives something true, and return that; fail the test
    after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimedOut(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)
