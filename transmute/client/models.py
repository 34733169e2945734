"""The API's answers as msgspec Structs, field for field as the gateway writes them
(transmute/services/api/schemas.py; tests/client/test_models.py keeps the two in step).

Decoding ignores fields a newer server adds, so an older client keeps working.
"""

from __future__ import annotations

from typing import Any

import msgspec

from transmute.core.models import TaskStatus


class ApiUrls(msgspec.Struct):
    """Where to follow a task: its status, its result, and its file."""

    status: str
    result: str
    download: str


class CreatedResponse(msgspec.Struct, kw_only=True):
    """A task was recorded and queued."""

    success: bool = True
    task_id: str
    status: str
    message: str
    api_urls: ApiUrls


class TaskMetadata(msgspec.Struct, kw_only=True):
    """Where a task came from and what it was asked to do."""

    source_type: str
    target_format: str
    original_filename: str
    file_size: int | None
    conversion_params: dict[str, Any]
    format_metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class WebhookDelivery(msgspec.Struct, kw_only=True):
    """The last webhook delivery of a task: which event, the receiver's answer, how many tries, when."""

    event: str = ""
    status_code: int | None = None
    attempts: int = 0
    at: str | None = None


class StatusResponse(msgspec.Struct, kw_only=True):
    """A task's current state (also each event of its live stream)."""

    success: bool = True
    task_id: str
    status: str
    """queued, running, done, failed or cancelled (transmute.core.models.TaskStatus)."""
    progress: int
    created_at: str
    updated_at: str
    started_at: str | None
    completed_at: str | None
    error_message: str
    is_finished: bool
    is_active: bool
    duration_seconds: float | None
    metadata: TaskMetadata
    warnings: list[str] = msgspec.field(default_factory=list)
    attempt: int = 1
    expires_at: str | None = None
    """When the task's result (or record) expires, on servers that expire them."""
    webhook: WebhookDelivery | None = None
    """The last webhook delivery, on servers that send webhooks."""

    @property
    def state(self) -> TaskStatus | None:
        """The status as the project's enum (None for a state this client does not know)."""
        try:
            return TaskStatus(self.status)
        except ValueError:
            return None


class TaskSummary(msgspec.Struct, kw_only=True):
    """A task as the listing shows it."""

    task_id: str
    status: str
    progress: int
    created_at: str
    updated_at: str
    started_at: str | None
    completed_at: str | None
    error_message: str
    target_format: str
    original_filename: str
    file_size: int | None
    duration_seconds: float | None
    api_urls: ApiUrls
    expires_at: str | None = None
    """When the task's result (or record) expires, on servers that expire them."""


class Pagination(msgspec.Struct, kw_only=True):
    """Where a page stands in the whole listing."""

    page: int
    per_page: int
    total: int
    pages: int
    has_next: bool
    has_previous: bool


class TaskListResponse(msgspec.Struct, kw_only=True):
    """One page of tasks."""

    success: bool = True
    tasks: list[TaskSummary]
    pagination: Pagination


class DeletedResponse(msgspec.Struct, kw_only=True):
    """A task and its files were removed."""

    success: bool = True
    task_id: str
    message: str
