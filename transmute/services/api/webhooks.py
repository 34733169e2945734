"""Webhooks on the gateway's side: read `webhook_url` and `webhook_events` at create, and ask a worker to deliver
an event once the task store has it (the HTTP request itself is the worker's: transmute.services.worker.webhooks).

The projector (done, failed, progress) and the cancel route (cancelled) call `WebhookNotifier`: they are where
the task's new status first exists, so the body is exactly what GET /api/tasks/{id}/status/ answers then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import dramatiq
import msgspec

from transmute.core.errors import InvalidParameter
from transmute.core.models import (
    DEFAULT_WEBHOOK_EVENTS,
    DELIVER_WEBHOOK_ACTOR,
    WEBHOOK_EVENTS,
    WEBHOOKS_QUEUE,
    Task,
    TaskEvent,
    WebhookEvent,
    WebhookMessage,
)
from transmute.services.api.schemas import status_of
from transmute.services.broker import send
from transmute.settings import WebhookConfig

log = logging.getLogger("transmute.webhooks")

WEBHOOK_FIELDS = ("webhook_url", "webhook_events")
REMEMBERED_TASKS = 10_000
"""Tasks whose webhook events (immutable after create) and last progress delivery the notifier keeps in memory."""


def read_webhook_events(value: Any) -> tuple[WebhookEvent, ...]:
    """`webhook_events` as a list or a comma-separated string (multipart), each a known event, each once."""
    if value is None:
        return DEFAULT_WEBHOOK_EVENTS
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise InvalidParameter("webhook_events", "'webhook_events' must be a list of event names, or one string "
                                                 "of names separated by commas, like \"done,failed\".")
    names = [item.strip().lower() for item in items if item.strip()]
    unknown = [name for name in names if name not in WEBHOOK_EVENTS]
    if unknown or not names:
        shown = ", ".join(repr(name) for name in unknown) or "no event"
        raise InvalidParameter("webhook_events", f"'webhook_events' must name events among "
                                                 f"{', '.join(WEBHOOK_EVENTS)}; got {shown}.")
    return tuple(event for event in WEBHOOK_EVENTS if event in names)  # in life order


def refuse_without_secret(config: WebhookConfig) -> None:
    """A webhook cannot be signed without TRANSMUTE_WEBHOOK_SECRET: the create is refused (400), never a task whose
    webhooks would never come."""
    if not config.secret:
        raise InvalidParameter("webhook_url", "Webhooks are off on this server: TRANSMUTE_WEBHOOK_SECRET is not "
                                              "set, so a delivery could not be signed; create the task without "
                                              "'webhook_url', or ask the operator to set it.")


def webhook_id(task: Task, event: WebhookEvent) -> str:
    """Standard Webhooks' `webhook-id`, one per event of one run: the same for a repeated notice, so a receiver
    that drops ids it has seen drops the repeat."""
    suffix = f"_{task.progress}" if event == "progress" else ""
    return f"msg_{task.id}_{task.attempt}_{event}{suffix}"


class WebhookNotifier:
    """Sends one delivery message per event a task's webhook asked for; progress at most every
    `config.progress_interval` seconds per task (in this gateway process)."""

    def __init__(self, broker: dramatiq.Broker, config: WebhookConfig) -> None:
        self.broker = broker
        """The broker whose webhooks queue the workers consume."""
        self.config = config
        self._events: OrderedDict[str, tuple[WebhookEvent, ...]] = OrderedDict()
        self._last_progress: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def after_event(self, event: TaskEvent, applied: bool, load: Callable[[], Task | None]) -> None:
        """The projector applied (or not) a worker's event: deliver it if the task's webhook asks for it.

        `load` reads the task from the store; it is called only for tasks with a webhook (their events are
        remembered), so tasks without one cost nothing more per event.
        """
        if event.kind not in ("progress", "done", "failed"):
            return  # `cancelled` is the cancel route's (see `notify`); `started` is no webhook event
        task = None
        events = self._remembered(event.task_id)
        if events is None:
            task = load()
            events = self._remember(event.task_id, task.webhook_events if task and task.webhook_url else ())
        if event.kind not in events:
            return
        if event.kind == "progress" and not self._progress_due(event.task_id):
            return
        task = task or load()
        # Applied now, or by an earlier try of this same event whose notice was not sent (the projector retries).
        if task is None or not (applied or task.last_seq == event.seq):
            return
        self.notify(task, event.kind)
        if event.kind != "progress":
            with self._lock:
                self._last_progress.pop(event.task_id, None)

    def notify(self, task: Task, event: WebhookEvent) -> None:
        """Ask a worker to deliver `event` with the task's status now (a no-op for a task without that webhook)."""
        if not task.webhook_url or event not in task.webhook_events:
            return
        body = msgspec.json.encode(status_of(task)).decode()
        message = WebhookMessage(task_id=task.id, event=event, url=task.webhook_url, body=body,
                                 webhook_id=webhook_id(task, event))
        send(self.broker, WEBHOOKS_QUEUE, DELIVER_WEBHOOK_ACTOR, msgspec.to_builtins(message))

    def _remembered(self, task_id: str) -> tuple[WebhookEvent, ...] | None:
        with self._lock:
            return self._events.get(task_id)

    def _remember(self, task_id: str, events: tuple[WebhookEvent, ...]) -> tuple[WebhookEvent, ...]:
        with self._lock:
            self._events[task_id] = events
            if len(self._events) > REMEMBERED_TASKS:
                self._events.popitem(last=False)
        return events

    def _progress_due(self, task_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last_progress.get(task_id)
            if last is not None and now - last < self.config.progress_interval:
                return False
            self._last_progress[task_id] = now
            if len(self._last_progress) > REMEMBERED_TASKS:
                self._last_progress.popitem(last=False)
        return True
