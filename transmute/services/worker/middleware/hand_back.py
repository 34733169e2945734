"""Draining: once a worker process stops taking conversions, a convert message a thread picks up goes back."""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

from transmute.core.models import CONVERT_ACTOR
from transmute.services.worker.middleware.messages import task_id_of

log = logging.getLogger("transmute.worker")


class HandBackWhileDraining(Middleware):
    """Once `draining` is set, a convert message is sent to its queue again (and this delivery acknowledged)
    instead of being started, so it does not wait behind a long conversion of a process that is stopping."""

    def __init__(self) -> None:
        self.draining = threading.Event()

    def hand_back(self, broker: dramatiq.Broker, message: Any) -> None:
        """Send a message that will not be processed here to its queue again."""
        broker.enqueue(message.copy())
        log.info("task %s: handed back to the queue (this worker is stopping)", task_id_of(message))

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if message.actor_name == CONVERT_ACTOR and self.draining.is_set():
            self.hand_back(broker, message)
            raise SkipMessage("the worker is stopping")
