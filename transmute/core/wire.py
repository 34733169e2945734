"""The task API's wire shapes: the JSON bodies the gateway answers (and the batch request it reads), field for
field as the task API spec writes them. One definition for the gateway (transmute/services/api, which builds them
from tasks in its schemas.py and documents them in its OpenAPI) and the Python client (transmute/client, which
reads them). Pure shapes: nothing here knows a task, a store or a route.

Decoding ignores fields a shape does not name, so a reader keeps working against a server that adds some.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class ApiUrls(msgspec.Struct):
    """Where to follow a task: its status, its result, and its file."""

    status: str
    result: str
    download: str


class ErrorDetails(msgspec.Struct):
    """What an error is about, when it is about one parameter (of the body, the form, the query or the path)."""

    field: str
    """The parameter's name, as the client sent it (`width`, `task_ids`, `page`...)."""


class ErrorResponse(msgspec.Struct, kw_only=True):
    """Every error: a sentence a person can act on, with `details` naming the parameter when it is about one."""

    success: bool = False
    error: str
    details: ErrorDetails | msgspec.UnsetType = msgspec.UNSET


class CreatedResponse(msgspec.Struct, kw_only=True):
    """A task was recorded and queued."""

    success: bool = True
    task_id: str
    status: str
    message: str
    api_urls: ApiUrls


class TaskMetadata(msgspec.Struct):
    """Where a task came from and what it was asked to do."""

    source_type: Literal["file", "url"]
    target_format: str
    original_filename: str
    file_size: int | None
    conversion_params: dict[str, Any]
    format_metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    """What the format told about its result once done (a sprite's tiles and their times); empty otherwise."""


TaskState = Literal["queued", "running", "done", "failed", "cancelled"]
"""The states of a task (transmute.core.models.TaskStatus), as the API writes them."""


class WebhookInfo(msgspec.Struct, kw_only=True):
    """The last attempt to deliver one of the task's webhooks."""

    event: Literal["progress", "done", "failed", "cancelled"]
    status_code: int | None
    """The receiver's HTTP status; null when it could not be reached or did not answer in time."""
    attempts: int
    """Tries of this event so far."""
    at: str


class StatusResponse(msgspec.Struct, kw_only=True):
    """A task's current state."""

    success: bool = True
    task_id: str
    status: TaskState
    progress: int
    created_at: str
    updated_at: str
    started_at: str | None
    completed_at: str | None
    expires_at: str | None
    """When the task's file expires: its result (done), or its uploaded source (failed or cancelled: no retry
    after); null while it runs or when kept for ever (docs/api.md, "Expiry")."""
    error_message: str
    is_finished: bool
    is_active: bool
    duration_seconds: float | None
    metadata: TaskMetadata
    warnings: list[str]
    """What the conversion noticed but survived (a source shorter than its header says...); empty otherwise."""
    attempt: int = 1
    """Which run of the task this is: 1, then one more after each retry, stall, or resumption by another worker
    (its progress then restarts from 0)."""
    webhook: WebhookInfo | None = None
    """The last webhook delivery attempt (null: no webhook, or none delivered yet)."""


class ResultInfo(msgspec.Struct):
    """The file a finished task produced."""

    output_url: str
    download_url: str
    filename: str
    file_size: int
    format: str
    original_filename: str
    conversion_params: dict[str, Any]
    format_metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    """As in the status's metadata: what the format told about the file (a sprite's tiles and their times)."""


class ResultResponse(msgspec.Struct, kw_only=True):
    """The result of a task that is done."""

    success: bool = True
    task_id: str
    status: Literal["done"]
    result: ResultInfo
    completed_at: str | None
    expires_at: str | None
    """When the result is removed (then this route and the download answer 410); null: kept for ever."""
    duration_seconds: float | None
    warnings: list[str]
    """As in the status: what the conversion noticed but survived."""


class FailedResultResponse(msgspec.Struct, kw_only=True):
    """The result of a task that failed: why, and when."""

    success: bool = False
    task_id: str
    status: Literal["failed"]
    error_message: str
    completed_at: str | None
    expires_at: str | None
    """As in the status: when its uploaded source is removed (no retry after)."""


class DeletedResponse(msgspec.Struct, kw_only=True):
    """A task and its files were removed."""

    success: bool = True
    task_id: str
    message: str


class NotReadyResponse(msgspec.Struct, kw_only=True):
    """The task has no result yet: poll its status until it is done."""

    success: bool = False
    task_id: str
    status: str
    progress: int
    error: str


class TaskSummary(msgspec.Struct):
    """A task as the listing shows it."""

    task_id: str
    status: TaskState
    progress: int
    created_at: str
    updated_at: str
    started_at: str | None
    completed_at: str | None
    expires_at: str | None
    """As in the status."""
    error_message: str
    target_format: str
    original_filename: str
    file_size: int | None
    duration_seconds: float | None
    api_urls: ApiUrls


class Pagination(msgspec.Struct):
    """Where this page stands in the whole listing."""

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


class FormatParameter(msgspec.Struct, kw_only=True):
    """An option a format takes, as its plugin declares it."""

    name: str
    type: str
    """boolean, integer, number, string or choice."""
    default: Any
    description: str
    allowed: str
    """What it accepts, in words (the same words a 400 uses)."""
    minimum: float | None = None
    maximum: float | None = None
    choices: list[str] | None = None


class FormatInfo(msgspec.Struct):
    """An installed output format."""

    name: str
    extension: str
    mime_type: str
    description: str
    parameters: list[FormatParameter]


class FormatsResponse(msgspec.Struct, kw_only=True):
    """Every installed output format."""

    success: bool = True
    formats: list[FormatInfo]


class BatchRequest(msgspec.Struct):
    """Task ids whose results to bundle in one ZIP (numbers or strings, at most 50)."""

    task_ids: list[str | int]
