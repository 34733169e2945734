"""Logs: while a convert message is processed its task id is current, so every log line of the attempt
carries `task_id` (transmute.logs)."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from transmute.core.models import CONVERT_ACTOR
from transmute.logs import current_task_id
from transmute.services.worker.middleware.messages import task_id_of


class TaskLogContext(Middleware):
    """Makes a convert message's task id current for the log lines written while it is processed."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if message.actor_name == CONVERT_ACTOR:
            self._local.token = current_task_id.set(task_id_of(message))

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        token = getattr(self._local, "token", None)
        if token is not None and message.actor_name == CONVERT_ACTOR:
            self._local.token = None
            current_task_id.reset(token)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.after_process_message(broker, message)
