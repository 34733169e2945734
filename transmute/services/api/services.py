"""What the gateway's routes share: the task store, the object storage, the broker and the limits."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio.to_thread
import dramatiq
import msgspec

from transmute.core.config import Settings
from transmute.core.models import CONVERT_ACTOR, CONVERT_QUEUE, Task
from transmute.core.storage import ObjectStorage
from transmute.core.store import TaskStore
from transmute.services.broker import send

log = logging.getLogger("transmute.api")


@dataclass
class Services:
    """The clients the routes use, created in the app's lifespan and closed when it ends."""

    settings: Settings
    store: TaskStore
    storage: ObjectStorage
    broker: dramatiq.Broker

    async def publish(self, task: Task) -> bool:
        """Send the task's convert message; False (logged) when the broker refused it.

        A task that could not be sent stays queued in the store, and is sent again by the reconciler.
        """
        payload = msgspec.to_builtins(task.convert_message())
        try:
            await anyio.to_thread.run_sync(send, self.broker, CONVERT_QUEUE, CONVERT_ACTOR, payload)
        except Exception:
            log.exception("task %s: could not send its convert message; it stays queued", task.id)
            return False
        try:
            await self.store.mark_published(task.id)  # confirmed: the reconciler need not send it again
        except Exception:
            log.warning("task %s: could not record that its message was sent", task.id, exc_info=True)
        return True
