"""What the gateway's routes share: the task store, the object storage, the broker, the limits and the run mode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio.to_thread
import dramatiq
import msgspec

from transmute.core.models import CONVERT_ACTOR, CONVERT_QUEUE, ControlMessage, MediaInfo, Task, WebhookEvent
from transmute.core.run_mode import RunMode
from transmute.services.api.admission import QueueDepth
from transmute.services.api.live import LiveState
from transmute.services.api.webhooks import WebhookNotifier
from transmute.services.broker import send
from transmute.services.control import publish_control
from transmute.settings import Settings
from transmute.storage.base import ObjectStorage
from transmute.store import TaskStore

log = logging.getLogger("transmute.api")


@dataclass
class Services:
    """The clients the routes use, created in the app's lifespan and closed when it ends."""

    settings: Settings
    store: TaskStore
    storage: ObjectStorage
    broker: dramatiq.Broker
    mode: RunMode
    live: LiveState
    """Live task state: the event streams' hub, and Redis when it is on."""
    control: Callable[[ControlMessage], None] | None = None
    """Embedded mode: the in-process worker's handler of control messages (distributed: RabbitMQ's exchange)."""
    webhooks: WebhookNotifier | None = None
    """Asks a worker to deliver a task's webhooks (the projector and the cancel route)."""
    _marks: PublishedMarks | None = field(default=None, init=False, repr=False)
    _queue_depth: QueueDepth | None = field(default=None, init=False, repr=False)

    @property
    def queue_depth(self) -> QueueDepth:
        """The tasks waiting in the queue (counted in the store, cached briefly)."""
        if self._queue_depth is None:
            self._queue_depth = QueueDepth(self.store)
        return self._queue_depth

    async def publish(self, task: Task, *, source_media: MediaInfo | None = None) -> bool:
        """Send the task's convert message; False (logged) when the broker refused it. `source_media`: the upload
        as probed at create, which the worker then need not probe again.

        A task that could not be sent stays queued in the store, and is sent again by the reconciler.

        The in-process broker (embedded mode) only puts the message on a queue in memory: it is sent in
        the event loop, and the task is not marked published, since no reconciler runs there (the
        in-process queue is lost with the process anyway; `transmute serve` re-sends every unfinished
        task when it starts, published or not).
        """
        payload = msgspec.to_builtins(task.convert_message(source_media))
        in_process = self.mode.in_process_broker
        try:
            if in_process:
                send(self.broker, CONVERT_QUEUE, CONVERT_ACTOR, payload)
            else:
                await anyio.to_thread.run_sync(send, self.broker, CONVERT_QUEUE, CONVERT_ACTOR, payload)
        except Exception:
            log.exception("task %s: could not send its convert message; it stays queued", task.id)
            return False
        if in_process:
            return True
        if self._marks is None:
            self._marks = PublishedMarks(self.store)
        try:
            await self._marks.mark(task.id)  # confirmed: the reconciler need not send it again
        except Exception:
            log.warning("task %s: could not record that its message was sent", task.id, exc_info=True)
        return True

    async def notify_webhook(self, task: Task, event: WebhookEvent) -> None:
        """Ask a worker to deliver the task's `event` webhook, if it has one for it (logged when the broker refuses:
        the task's state is what matters to the request)."""
        if self.webhooks is None or not task.webhook_url:
            return
        try:
            if self.mode.in_process_broker:
                self.webhooks.notify(task, event)
            else:
                await anyio.to_thread.run_sync(self.webhooks.notify, task, event)
        except Exception:
            log.exception("task %s: could not send its %s webhook", task.id, event)

    async def broadcast(self, message: ControlMessage) -> None:
        """Tell every worker (a cancel: the one running the task stops it, the others skip its message)."""
        if self.mode.in_process_broker:
            if self.control is not None:
                self.control(message)
            return
        await anyio.to_thread.run_sync(publish_control, self.settings.broker, message)


class PublishedMarks:
    """Records that tasks' messages were confirmed, in group commits: one UPDATE for all the tasks marked
    while the previous UPDATE ran. Each caller still returns only once its own mark is committed."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self._pending: list[tuple[str, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def mark(self, task_id: str) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((task_id, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        await asyncio.shield(done)

    async def _write_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self.store.mark_published_many([task_id for task_id, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                        done.exception()  # retrieved: a caller that went away must not leave a warning
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
