"""What the worker's middleware read from a convert message."""

from __future__ import annotations

from typing import Any


def payload_of(message: Any) -> dict:
    """The message's one argument (a convert message or a task event, as a dict); empty if it has none."""
    payload = message.args[0] if message.args else None
    return payload if isinstance(payload, dict) else {}


def task_id_of(message: Any) -> str | None:
    task_id = payload_of(message).get("task_id")
    return str(task_id) if task_id is not None else None
