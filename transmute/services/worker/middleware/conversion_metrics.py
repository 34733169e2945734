"""Metrics (services/worker/metrics.py) of every convert message processed.

It counts once in `transmute_conversions_total` with its format and outcome, is timed in
`transmute_conversion_seconds`, and is in `transmute_conversions_in_flight` while it runs. The outcome is
the task event the attempt sent (`done`, `failed`, `cancelled` or `stalled`, seen as it is enqueued), else
`retried` / `failed` for an exception (as Dramatiq's Retries middleware decided), else `interrupted` (a
shutdown handed the task back). Everything is read from the messages: the convert actor knows nothing of it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from transmute.core.models import CONVERT_ACTOR, PROJECT_EVENT_ACTOR
from transmute.services.worker.metrics import CONVERSION_SECONDS, CONVERSIONS, IN_FLIGHT
from transmute.services.worker.middleware.messages import payload_of, task_id_of


@dataclass
class _Attempt:
    task_id: str | None
    format: str
    started: float
    outcome: str | None = None


def _format_of(message: Any) -> str:
    params = payload_of(message).get("params")
    return str((params or {}).get("format") or "gif") if isinstance(params, dict) else "gif"


class ConversionMetrics(Middleware):
    """Counts and times the convert actor's attempts by format and outcome. It must also watch the broker the
    attempt's task events are sent on, when that is another one (embedded mode)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if message.actor_name != CONVERT_ACTOR:
            return
        self._local.attempt = _Attempt(task_id=task_id_of(message), format=_format_of(message),
                                       started=time.monotonic())
        IN_FLIGHT.inc()

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: Any) -> None:
        attempt = getattr(self._local, "attempt", None)
        if attempt is None or message.actor_name != PROJECT_EVENT_ACTOR:
            return
        event = payload_of(message)
        ended = event.get("kind") in ("done", "failed", "cancelled", "stalled")
        if ended and str(event.get("task_id")) == attempt.task_id:
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
        IN_FLIGHT.dec()
        CONVERSIONS.labels(format=attempt.format, outcome=outcome or "interrupted").inc()
        CONVERSION_SECONDS.labels(format=attempt.format).observe(time.monotonic() - attempt.started)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.after_process_message(broker, message)
