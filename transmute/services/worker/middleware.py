"""`WorkerOps`: the Dramatiq middleware that makes a worker observable and lets it drain.

- Metrics (metrics.py): every convert message processed counts once in `transmute_conversions_total`
  with its format and outcome, is timed in `transmute_conversion_seconds`, and is in
  `transmute_conversions_in_flight` while it runs. The outcome is the task event the attempt sent
  (`done` or `failed`, seen as it is enqueued), else `retried` / `failed` for an exception (as Dramatiq's
  Retries middleware decided), else `interrupted` (a shutdown handed the task back).
- Logs: while a convert message is processed, its task id is current (transmute.logs), so every
  log line of the attempt carries `task_id`.
- Draining: once `draining` is set, a convert message a worker thread picks up is handed back to the
  queue (sent again, this delivery acknowledged) instead of being started.

It needs no change to the convert actor: everything is read from the messages.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

from transmute.core.models import CONVERT_ACTOR, PROJECT_EVENT_ACTOR
from transmute.logs import current_task_id
from transmute.services.worker.metrics import CONVERSION_SECONDS, CONVERSIONS, IN_FLIGHT

log = logging.getLogger("transmute.worker")


@dataclass
class _Attempt:
    task_id: str | None
    format: str
    started: float
    token: Any
    outcome: str | None = None


def _payload(message: Any) -> dict:
    payload = message.args[0] if message.args else None
    return payload if isinstance(payload, dict) else {}


class WorkerOps(Middleware):
    """Metrics, the task id of log lines, and the drain guard of the convert actor's messages."""

    def __init__(self) -> None:
        self.draining = threading.Event()
        self._local = threading.local()

    def hand_back(self, broker: dramatiq.Broker, message: Any) -> None:
        """Send a message that will not be processed here to its queue again."""
        broker.enqueue(message.copy())
        log.info("task %s: handed back to the queue (this worker is stopping)", _payload(message).get("task_id"))

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if message.actor_name != CONVERT_ACTOR:
            return
        if self.draining.is_set():
            self.hand_back(broker, message)
            raise SkipMessage("the worker is stopping")
        payload = _payload(message)
        params = payload.get("params")
        task_id = payload.get("task_id")
        self._local.attempt = _Attempt(
            task_id=str(task_id) if task_id is not None else None,
            format=str((params or {}).get("format") or "gif") if isinstance(params, dict) else "gif",
            started=time.monotonic(),
            token=current_task_id.set(str(task_id) if task_id is not None else None),
        )
        IN_FLIGHT.inc()

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: Any) -> None:
        attempt = getattr(self._local, "attempt", None)
        if attempt is None or message.actor_name != PROJECT_EVENT_ACTOR:
            return
        event = _payload(message)
        if event.get("kind") in ("done", "failed") and str(event.get("task_id")) == attempt.task_id:
            attempt.outcome = event["kind"]

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        attempt = getattr(self._local, "attempt", None)
        if attempt is None or message.actor_name != CONVERT_ACTOR:
            return
        self._local.attempt = None
        outcome = attempt.outcome
        if outcome is None and exception is not None:
            outcome = "failed" if message.failed else "retried"
        outcome = outcome or "interrupted"
        IN_FLIGHT.dec()
        CONVERSIONS.labels(format=attempt.format, outcome=outcome).inc()
        CONVERSION_SECONDS.labels(format=attempt.format).observe(time.monotonic() - attempt.started)
        current_task_id.reset(attempt.token)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.after_process_message(broker, message)


def install_worker_ops(broker: dramatiq.Broker) -> WorkerOps:
    """Add WorkerOps to the broker (once); return it."""
    for item in broker.middleware:
        if isinstance(item, WorkerOps):
            return item
    ops = WorkerOps()
    broker.add_middleware(ops)
    return ops
