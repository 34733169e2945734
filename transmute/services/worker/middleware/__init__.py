"""The worker's Dramatiq middleware, one concern each, and the one function that installs them."""

from __future__ import annotations

import dramatiq

from transmute.services.worker.middleware.conversion_metrics import ConversionMetrics
from transmute.services.worker.middleware.hand_back import HandBackWhileDraining
from transmute.services.worker.middleware.log_context import TaskLogContext

__all__ = ["ConversionMetrics", "HandBackWhileDraining", "TaskLogContext", "install_worker_middleware"]


def install_worker_middleware(broker: dramatiq.Broker, *,
                              events_broker: dramatiq.Broker | None = None) -> HandBackWhileDraining:
    """Add the worker's middleware to `broker` (once each) and return the drain's.

    In this order: a message handed back by the drain is neither logged nor counted as an attempt. The
    conversion metrics also watch `events_broker`, where the attempts' task events go when it is another."""
    for kind in (HandBackWhileDraining, TaskLogContext, ConversionMetrics):
        if not any(isinstance(item, kind) for item in broker.middleware):
            broker.add_middleware(kind())
    metrics = next(item for item in broker.middleware if isinstance(item, ConversionMetrics))
    if events_broker is not None and metrics not in events_broker.middleware:
        events_broker.add_middleware(metrics)
    return next(item for item in broker.middleware if isinstance(item, HandBackWhileDraining))
