"""The gateway's answers built from a task: the wire shapes themselves (field for field as in the task API spec)
are transmute.core.wire's, shared with the Python client; here is only what fills them from the task store's
Task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from transmute.core.models import Task
from transmute.core.wire import ApiUrls, StatusResponse, TaskMetadata, TaskSummary, WebhookInfo


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, to the second, as the spec writes timestamps."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def api_urls_of(task_id: str) -> ApiUrls:
    """Where to follow the task `task_id`."""
    base = f"/api/tasks/{task_id}"
    return ApiUrls(status=f"{base}/status/", result=f"{base}/result/", download=f"{base}/download/")


def format_metadata_of(task: Task) -> dict[str, Any]:
    """What the task's format told about its result (nothing before it is done)."""
    return dict(task.result.metadata) if task.result is not None else {}


def warnings_of(task: Task) -> list[str]:
    """The warnings of a task's conversion (none before it is done)."""
    return list(task.result.warnings) if task.result is not None else []


def _state_of(task: Task) -> dict:
    """The fields the status and the listing both show: id, status, progress, error, timestamps."""
    return {
        "task_id": task.id,
        "status": task.status.value,
        "progress": task.progress,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "started_at": iso(task.started_at),
        "completed_at": iso(task.completed_at),
        "expires_at": iso(task.expires_at),
        "error_message": task.error_message,
    }


def webhook_of(task: Task) -> WebhookInfo | None:
    """The task's last webhook delivery attempt, if it had one."""
    delivery = task.webhook
    if delivery is None:
        return None
    return WebhookInfo(event=delivery.event, status_code=delivery.status_code, attempts=delivery.attempts,
                       at=iso(delivery.at) or "")


def status_of(task: Task) -> StatusResponse:
    """The task's status answer (also each event of its live stream, and each webhook's body)."""
    return StatusResponse(
        **_state_of(task),
        attempt=task.attempt,
        webhook=webhook_of(task),
        is_finished=task.status.is_finished,
        is_active=not task.status.is_finished,
        duration_seconds=task.duration_seconds,
        warnings=warnings_of(task),
        metadata=TaskMetadata(
            source_type=task.source_type,
            target_format=task.target_format,
            original_filename=task.original_filename,
            file_size=task.file_size,
            conversion_params=task.params,
            format_metadata=format_metadata_of(task),
        ),
    )


def summary_of(task: Task) -> TaskSummary:
    """The task as the listing shows it."""
    return TaskSummary(
        **_state_of(task),
        target_format=task.target_format,
        original_filename=task.original_filename,
        file_size=task.file_size,
        duration_seconds=task.duration_seconds,
        api_urls=api_urls_of(task.id),
    )
