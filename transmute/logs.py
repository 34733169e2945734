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
from collections.abc import Iterator
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
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def uvicorn_log_config() -> dict | None:
    """What to give uvicorn's `log_config`: its own text set-up, or None (JSON: its loggers propagate to ours)."""
    if log_format() != "json":
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    return None
