"""The API's answers as the client reads them: the shared wire shapes of transmute.core.wire (the gateway writes
the same Structs), re-exported here so `from transmute.client import StatusResponse` keeps working.

Decoding ignores fields a newer server adds. Where the client reads more loosely than the gateway writes, a
subclass below says so, field by field, and nothing else: a value this client does not know (a new task state,
source type or webhook event) is kept as text, and fields an older server did not send take a default.
"""

from __future__ import annotations

import msgspec

from transmute.core import wire
from transmute.core.models import TaskStatus
from transmute.core.wire import ApiUrls, CreatedResponse, DeletedResponse, Pagination

__all__ = ["ApiUrls", "CreatedResponse", "DeletedResponse", "Pagination", "StatusResponse", "TaskListResponse",
           "TaskMetadata", "TaskSummary", "WebhookDelivery"]


class TaskMetadata(wire.TaskMetadata):
    """Where a task came from and what it was asked to do."""

    source_type: str  # type: ignore[assignment]
    """file or url; a source type of a newer server as it writes it."""


class WebhookDelivery(wire.WebhookInfo, kw_only=True):
    """The last webhook delivery of a task: which event, the receiver's answer, how many tries, when."""

    event: str  # type: ignore[assignment]
    """progress, done, failed or cancelled; an event of a newer server as it writes it."""


class StatusResponse(wire.StatusResponse, kw_only=True):
    """A task's current state (also each event of its live stream)."""

    status: str  # type: ignore[assignment]
    """queued, running, done, failed or cancelled (`.state`); a state of a newer server as it writes it."""
    expires_at: str | None = None
    """Null also from a server older than expiry (issue 14), which does not send it."""
    metadata: TaskMetadata
    warnings: list[str] = msgspec.field(default_factory=list)
    """Empty also from a server older than warnings, which does not send them."""
    webhook: WebhookDelivery | None = None

    @property
    def state(self) -> TaskStatus | None:
        """The status as the project's enum (None for a state this client does not know)."""
        try:
            return TaskStatus(self.status)
        except ValueError:
            return None


class TaskSummary(wire.TaskSummary, kw_only=True):
    """A task as the listing shows it."""

    status: str  # type: ignore[assignment]
    """As in StatusResponse."""
    expires_at: str | None = None
    """As in StatusResponse."""


class TaskListResponse(wire.TaskListResponse, kw_only=True):
    """One page of tasks."""

    tasks: list[TaskSummary]  # type: ignore[assignment]
