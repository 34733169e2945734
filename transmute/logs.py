"""Logging set-up shared by every transmute process: human-readable text (the default) or JSON lines.

`TRANSMUTE_LOG_FORMAT=json` makes every log line one JSON object: `time` (ISO 8601, UTC), `level`,
`logger`, `message`, plus `task_id` on every line written while a task is being handled (the convert
actor and the projector set it through `task_context`; the gateway once it has recorded a task), and
`exc_info` when there is a traceback. The formatter is python-json-logger's: it serialises the record's
extra attributes and exceptions the way log collectors expect, so we do not keep our own.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from transmute.settings import LoggingConfig

LOG_LEVEL_ENV = LoggingConfig.env_name("level")
TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"

current_task_id: ContextVar[str | None] = ContextVar("transmute_task_id", default=None)
"""The task the current thread (or asyncio task) is working on, for the `task_id` of its log lines."""


@contextlib.contextmanager
def task_context(task_id: str | None) -> Iterator[None]:
    """Log lines written inside carry `task_id`."""
    token = current_task_id.set(task_id)
    try:
        yield
    finally:
        current_task_id.reset(token)


class TaskIdFilter(logging.Filter):
    """Adds `task_id` to a record written while a task is current (unless the record has its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "task_id", None) is None:
            task_id = current_task_id.get()
            if task_id is not None:
                record.task_id = task_id
        return True


class BrokerOutageFilter(logging.Filter):
    """While the broker is away, Dramatiq's consumers retry every few seconds and log each failure with its
    traceback (about 30 lines a queue every 3 s). This keeps the first failure of each consumer and then one line a
    `quiet_seconds`, without the traceback, saying how many were left out."""

    CONSUMER = "dramatiq.worker.ConsumerThread"
    MESSAGES = ("Consumer encountered a connection error", "Restarting consumer in")

    def __init__(self, quiet_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.quiet_seconds = quiet_seconds
        self.clock = clock
        self._last: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.CONSUMER) or not str(record.msg).startswith(self.MESSAGES):
            return True
        now = self.clock()
        key = f"{record.name}:{str(record.msg)[:20]}"
        shown_at, left_out = self._last.get(key, (float("-inf"), 0))
        if now - shown_at < self.quiet_seconds:
            self._last[key] = (shown_at, left_out + 1)
            return False
        self._last[key] = (now, 0)
        if left_out == 0:  # the first of an outage: whole
            return True
        record.msg = f"{record.getMessage()} (again; {left_out} like it in the last {now - shown_at:.0f} s not shown)"
        record.args, record.exc_info, record.exc_text = None, None, None
        return True


def log_format() -> str:
    return LoggingConfig.from_env().format


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Send every logger's records to stderr, as text or JSON (`level` and `fmt` default to the settings)."""
    if level is None or fmt is None:
        config = LoggingConfig.from_env()
        level, fmt = level or config.level, fmt or config.format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(TaskIdFilter())
    handler.addFilter(BrokerOutageFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # pika logs each connection failure as ERROR and then raises it: Dramatiq or our own caller reports it.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def uvicorn_log_config() -> dict | None:
    """What to give uvicorn's `log_config`: its own text set-up, or None (JSON: its loggers propagate to ours)."""
    if log_format() != "json":
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    return None
