"""The reconciler: re-sends tasks the gateway recorded but whose convert message the broker never confirmed.

A task is recorded before its message is sent. If the broker refuses the message (RabbitMQ restarting),
or the gateway dies between the two, the task would stay queued for ever. The gateway marks a task
`published` once the broker confirms its message (publisher confirms); this loop, run in every gateway
replica, picks queued tasks still unconfirmed after `after` seconds, claims each with a conditional
UPDATE (a lease: of two replicas exactly one wins, and a claim of a replica that died expires), and
sends it again. A confirmed message sits in a durable queue as a persistent message, so confirmed
tasks need no second send; a duplicate (confirmed, but the mark was lost) is harmless, since the worker
is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from transmute.core.models import Task, utcnow
from transmute.settings import ReconcilerConfig
from transmute.store import TaskStore

log = logging.getLogger("transmute.reconciler")

Publish = Callable[[Task], Awaitable[bool]]
"""Sends a task's convert message; True once the broker confirmed it (and the task is marked published)."""


@dataclass
class Reconciler:
    store: TaskStore
    publish: Publish
    config: ReconcilerConfig

    async def run_once(self) -> int:
        """One pass; the number of tasks sent again."""
        cutoff = utcnow() - timedelta(seconds=self.config.after)
        sent = 0
        for task in await self.store.unpublished(older_than=cutoff):
            if not await self.store.claim_publish(task.id, lease=self.config.lease):
                continue  # another replica has it, or it started meanwhile
            if await self.publish(task):
                sent += 1
                log.info("task %s: its convert message was never confirmed; sent it again", task.id)
            else:
                break  # the broker is still away: leave the rest for the next pass
        return sent

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciler pass failed; trying again in %g s", self.config.interval)
            await asyncio.sleep(self.config.interval)
