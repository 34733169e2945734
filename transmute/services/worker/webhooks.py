"""The webhook actor: POST one event's status JSON to a task's webhook URL, signed per Standard Webhooks.

A delivery that timed out, could not connect, or got a 5xx, 408 or 429 is sent again after the next of
TRANSMUTE_WEBHOOK_RETRY_DELAYS (same webhook-id, fresh timestamp and signature); any other answer ends it.
Every try is reported as a `webhook` task event, so the task's status shows the last one in both modes.
The actor runs on threads of its own (its own queue and Dramatiq worker): a slow receiver delays no conversion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from math import floor

import dramatiq
import msgspec
from standardwebhooks.webhooks import Webhook

from transmute.core.errors import SourceError
from transmute.core.models import (
    DELIVER_WEBHOOK_ACTOR,
    EVENTS_QUEUE,
    PROJECT_EVENT_ACTOR,
    WEBHOOKS_QUEUE,
    TaskEvent,
    WebhookDelivery,
    WebhookMessage,
    next_seq,
    utcnow,
)
from transmute.fetch import Unreachable, post
from transmute.services.broker import BROKER_UNREACHABLE, send, send_later
from transmute.settings import WebhookConfig

log = logging.getLogger("transmute.webhooks")

RETRIED_STATUSES = frozenset({408, 429})
"""4xx answers that mean "later" (timeout, too many requests); any other 4xx means "never"."""


def worth_retrying(status_code: int | None) -> bool:
    """Whether a try with this outcome is tried again: no answer, a 5xx, 408 or 429."""
    return status_code is None or status_code >= 500 or status_code in RETRIED_STATUSES


def signed_headers(secret: str, webhook_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of one try: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`."""
    now = now or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "user-agent": "transmute-webhooks",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(floor(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
    }


@dataclass
class WebhookSender:
    """What the webhook actor needs: where to re-send a delivery, where to report it, and the settings."""

    broker: dramatiq.Broker
    """The broker of the webhooks queue (a retry is sent there, delayed)."""
    config: WebhookConfig
    allow_private: bool = False
    events_broker: dramatiq.Broker | None = None
    """Where task events go, when not on `broker` (embedded mode: the projector's own in-process broker)."""

    def __call__(self, payload: dict) -> None:
        message = msgspec.convert(payload, WebhookMessage)
        status_code, problem = self.try_once(message)
        self._report(message, status_code)
        delays = self.config.retry_delays
        if problem is None and not worth_retrying(status_code):
            level = logging.INFO if 200 <= (status_code or 0) < 300 else logging.WARNING
            log.log(level, "task %s: webhook %s answered %s (try %d)", message.task_id, message.event, status_code,
                    message.attempt)
            return
        if (problem is not None and not isinstance(problem, Unreachable)) or message.attempt > len(delays):
            log.warning("task %s: webhook %s given up after %d tries: %s", message.task_id, message.event,
                        message.attempt, problem.message if problem else f"HTTP {status_code}")
            return
        delay = delays[message.attempt - 1]
        log.info("task %s: webhook %s %s; trying again in %g s", message.task_id, message.event,
                 problem.message.rstrip(".") if problem else f"answered {status_code}", delay)
        retry = msgspec.structs.replace(message, attempt=message.attempt + 1)
        send_later(self.broker, WEBHOOKS_QUEUE, DELIVER_WEBHOOK_ACTOR, msgspec.to_builtins(retry), delay=delay)

    def try_once(self, message: WebhookMessage) -> tuple[int | None, SourceError | None]:
        """One POST: the receiver's status code, or None and why there was none."""
        if not self.config.secret:
            # The gateway refuses a webhook_url without a secret; a worker without one cannot sign: a later try,
            # once it is configured, may.
            log.error("task %s: TRANSMUTE_WEBHOOK_SECRET is not set on this worker; the webhook cannot be signed",
                      message.task_id)
            return None, Unreachable("TRANSMUTE_WEBHOOK_SECRET is not set on the worker.")
        headers = signed_headers(self.config.secret, message.webhook_id, message.body)
        try:
            return post(message.url, message.body.encode(), headers, timeout=self.config.timeout,
                        allow_private=self.allow_private), None
        except SourceError as exc:
            return None, exc

    def _report(self, message: WebhookMessage, status_code: int | None) -> None:
        delivery = WebhookDelivery(event=message.event, status_code=status_code, attempts=message.attempt,
                                   at=utcnow())
        event = TaskEvent(task_id=message.task_id, seq=next_seq(), kind="webhook", at=delivery.at, webhook=delivery)
        try:
            send(self.events_broker or self.broker, EVENTS_QUEUE, PROJECT_EVENT_ACTOR, msgspec.to_builtins(event))
        except BROKER_UNREACHABLE as exc:
            # Only the status's account of the delivery is lost; the delivery itself stands.
            log.warning("task %s: webhook outcome not recorded: %s", message.task_id, exc)


def register_webhook_actor(sender: WebhookSender) -> dramatiq.Actor:
    """Declare the webhook actor on the sender's broker. Dramatiq never retries it: a failed try is sent again
    by the actor itself, after the configured delay."""
    time_limit_ms = int((sender.config.timeout + 60) * 1000)
    return dramatiq.actor(sender, broker=sender.broker, actor_name=DELIVER_WEBHOOK_ACTOR, queue_name=WEBHOOKS_QUEUE,
                          max_retries=0, time_limit=time_limit_ms)


def start_webhook_worker(broker: dramatiq.Broker, threads: int) -> dramatiq.Worker:
    """A Dramatiq worker on the webhooks queue only, with threads of its own."""
    worker = dramatiq.Worker(broker, queues={WEBHOOKS_QUEUE}, worker_threads=threads, worker_timeout=500)
    worker.queue_prefetch = threads
    worker.start()
    return worker
