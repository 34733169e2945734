"""The projector: applies worker events to the task store. It runs inside the gateway process.

Events arrive on the broker's events queue and are consumed by a small Dramatiq worker started in the
app's lifespan; each is applied on the app's event loop, where the store lives. Applying is a
conditional UPDATE (see TaskStore.apply_event), so duplicates and stale events change nothing, and
several gateway replicas may consume the same queue. Each applied event is announced to the live state
(this process's event streams and, with Redis, every replica's).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import dramatiq
import msgspec

from transmute.core.models import EVENTS_QUEUE, PROJECT_EVENT_ACTOR, TaskEvent
from transmute.services.api.live import LiveState
from transmute.services.api.webhooks import WebhookNotifier
from transmute.store import is_store_unreachable

T = TypeVar("T")

log = logging.getLogger("transmute.projector")

RETRIES_AFTER_OTHER_ERRORS = 20
"""Tries of an event that failed for a reason other than the database being away (about 3 minutes)."""


def retry_event(retries: int, exc: BaseException) -> bool:
    """Whether to apply a failed event again: always while the database cannot be reached (applying is
    idempotent, and a dropped `done` would leave its task running for ever), else up to 20 times."""
    return is_store_unreachable(exc) or retries < RETRIES_AFTER_OTHER_ERRORS


@dataclass
class Projector:
    """Applies one event, blocking the Dramatiq thread until the store has it (so the ack follows the write)."""

    live: LiveState
    loop: asyncio.AbstractEventLoop
    timeout: float = 60
    webhooks: WebhookNotifier | None = None

    def __call__(self, payload: dict) -> None:
        event = msgspec.convert(payload, TaskEvent)
        applied = self._wait(self.apply(event))
        if event.kind in ("done", "failed"):
            log.info("task %s %s%s", event.task_id, event.kind, "" if applied else " (already finished: ignored)")
        if self.webhooks is not None:
            # After the store has the event (so the body is the status it now answers), before the ack (so a
            # notice that could not be sent is sent when the event is tried again).
            self.webhooks.after_event(event, applied, lambda: self._wait(self.live.store.get(event.task_id)))

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a store call on the app's loop, blocking this Dramatiq thread until it ends."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(self.timeout)

    async def apply(self, event: TaskEvent) -> bool:
        """Apply the event to the store; tell the open streams (and the other replicas) when it changed the task."""
        applied = await self.live.store.apply_event(event)
        if applied:
            await self.live.changed(event.task_id)
        return applied


def start_projector(broker: dramatiq.Broker, live: LiveState, loop: asyncio.AbstractEventLoop,
                    webhooks: WebhookNotifier | None = None) -> dramatiq.Worker:
    """Declare the projector actor on the broker and start a worker that consumes only the events queue."""
    projector = Projector(live=live, loop=loop, webhooks=webhooks)
    if PROJECT_EVENT_ACTOR in broker.actors:
        broker.actors[PROJECT_EVENT_ACTOR].fn = projector
    else:
        dramatiq.actor(projector, broker=broker, actor_name=PROJECT_EVENT_ACTOR, queue_name=EVENTS_QUEUE,
                       retry_when=retry_event, min_backoff=500, max_backoff=10_000)
    worker = dramatiq.Worker(broker, queues={EVENTS_QUEUE}, worker_threads=1, worker_timeout=100)
    worker.start()
    return worker
