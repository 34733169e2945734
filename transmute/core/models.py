"""The task, and the two messages that move it: the convert message and the task event."""

from __future__ import annotations

import enum
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

CONVERT_QUEUE = "transmute.convert"
CONVERT_ACTOR = "convert"
EVENTS_QUEUE = "transmute.events"
PROJECT_EVENT_ACTOR = "project_task_event"
WEBHOOKS_QUEUE = "transmute.webhooks"
"""Webhook deliveries: a queue of their own, so a conversion never waits behind a slow receiver."""
DELIVER_WEBHOOK_ACTOR = "deliver_webhook"
CONTROL_EXCHANGE = "transmute.control"
"""A fanout exchange: each worker process binds a queue of its own to it, so every worker hears every control
message (a queue alone hands each message to one consumer)."""


class TaskStatus(enum.StrEnum):
    """Where a task is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED)

    @property
    def may_retry(self) -> bool:
        """A failed or cancelled task may be queued again (a done one has its result; a live one is on its way)."""
        return self in (TaskStatus.FAILED, TaskStatus.CANCELLED)


SourceType = Literal["file", "url"]


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


_seq_lock = threading.Lock()
_last_seq = 0


def next_seq() -> int:
    """A sequence number for a task event: the nanosecond clock, strictly growing within this process.

    A redelivered task starts later than the attempt it replaces, so its events sort after that attempt's.
    """
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns())
        return _last_seq


def result_key(task_id: str, extension: str) -> str:
    """Where a task's result is stored; fixed by the task id, so a redelivered task overwrites, not adds."""
    return f"results/task_{task_id}_result.{extension}"


def attempts_prefix(task_id: str) -> str:
    """Where a task's attempt markers are kept: one object per attempt that has not ended (yet)."""
    return f"attempts/task_{task_id}/"


class TaskResult(msgspec.Struct, kw_only=True):
    """The stored output of a finished conversion."""

    key: str
    """Object-storage key of the result."""
    filename: str
    size: int
    mime_type: str
    format: str
    warnings: list[str] = msgspec.field(default_factory=list)
    """What the conversion noticed but survived (a source shorter than its header says...), one sentence each."""
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    """What the format's plugin told about the output (ConversionJob.metadata: a sprite's tile times...)."""


class ConvertMessage(msgspec.Struct, kw_only=True):
    """What the gateway asks a worker to do: convert one task's source with these parameters."""

    task_id: str
    params: dict[str, Any]
    source_type: SourceType
    source_key: str | None = None
    """Object-storage key of an uploaded source."""
    source_url: str | None = None
    """URL the worker downloads the source from."""
    original_filename: str = ""
    attempt: int = 1
    """Which run of the task this is: 1, then one more for each retry (a cancel names the run it stops)."""
    stalls: int = 0
    """Runs of the task before this one that stalled (a stalled run is tried once more, then the task fails)."""
    source_media: MediaInfo | None = None
    """The gateway's probe of an uploaded source, sent with the message of the create: the worker checks it against
    its own limits instead of probing the same bytes again. None (a URL source; a message the gateway sends again
    later, for a retry, after a restart or from the reconciler): the worker probes."""


class ControlMessage(msgspec.Struct, kw_only=True):
    """What the gateway tells every worker at once (over CONTROL_EXCHANGE): stop this run of this task."""

    action: Literal["cancel"]
    task_id: str
    attempt: int = 1


EventKind = Literal["started", "progress", "done", "failed", "cancelled", "stalled", "webhook"]
"""What a task event reports. `stalled`: the run stopped because its progress stood still; the task is queued
again as the next attempt. `webhook`: the outcome of a webhook delivery attempt (no change of state)."""

WebhookEvent = Literal["progress", "done", "failed", "cancelled"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("progress", "done", "failed", "cancelled")
DEFAULT_WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("done", "failed", "cancelled")


class WebhookDelivery(msgspec.Struct, kw_only=True):
    """The last attempt to deliver one of a task's webhooks, as its status shows it."""

    event: WebhookEvent
    status_code: int | None
    """The receiver's HTTP status; None when it could not be reached or did not answer in time."""
    attempts: int
    """Tries of this event so far (the same webhook-id on each)."""
    at: datetime


class WebhookMessage(msgspec.Struct, kw_only=True):
    """What a worker is asked to deliver: one event's status JSON to a task's webhook URL."""

    task_id: str
    event: WebhookEvent
    url: str
    body: str
    """The task's status JSON at the event, exactly as sent (and signed)."""
    webhook_id: str
    """Standard Webhooks' `webhook-id`: the same on every try of this event, so a receiver can drop repeats."""
    attempt: int = 1


class TaskEvent(msgspec.Struct, kw_only=True):
    """One change of a task's state, reported by a worker and applied to the task store by the projector."""

    task_id: str
    seq: int
    """Grows with every event of a task (nanosecond clock); an event at or below the stored seq is stale."""
    kind: EventKind
    at: datetime
    progress: int | None = None
    result: TaskResult | None = None
    error: str | None = None
    file_size: int | None = None
    """Size of the source, once the worker knows it (URL sources)."""
    attempt: int | None = None
    """The run of the task the event is about: an event of an earlier run (before a retry) changes nothing.
    None (events of an older transmute): any run."""
    webhook: WebhookDelivery | None = None
    """A `webhook` event's delivery attempt."""


class Task(msgspec.Struct, kw_only=True):
    """A conversion task as the task store keeps it."""

    id: str
    status: TaskStatus
    progress: int
    target_format: str
    source_type: SourceType
    original_filename: str
    file_size: int | None
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str = ""
    source_key: str | None = None
    source_url: str | None = None
    result: TaskResult | None = None
    owner: str | None = None
    last_seq: int = 0
    attempt: int = 1
    """1 for the first run, one more for each retry."""
    source_removed_at: datetime | None = None
    """When the sweeper removed the uploaded source (its TTL past); None while it is kept."""
    result_removed_at: datetime | None = None
    """When the sweeper removed the result file (its TTL past); None while it is kept."""
    expires_at: datetime | None = None
    """When the task's file expires (transmute.core.retention.Retention.expires_at), as the store worked it out."""
    webhook_url: str | None = None
    webhook_events: tuple[WebhookEvent, ...] = DEFAULT_WEBHOOK_EVENTS
    """Which events are delivered to `webhook_url`."""
    webhook: WebhookDelivery | None = None
    """The last webhook delivery attempt, if any."""

    @property
    def has_expired(self) -> bool:
        """Whether the task's file (its result, or the source a retry needs) has expired, swept yet or not."""
        return self.expires_at is not None and self.expires_at <= utcnow()

    @property
    def duration_seconds(self) -> float | None:
        """Conversion time: from start to completion, or to now while it runs."""
        if self.started_at is None:
            return None
        end = self.completed_at or utcnow()
        return round(max(0.0, (end - self.started_at).total_seconds()), 3)

    def convert_message(self, source_media: MediaInfo | None = None) -> ConvertMessage:
        """The message that asks a worker to convert this task (`source_media`: its source as probed at create)."""
        return ConvertMessage(
            task_id=self.id,
            params=self.params,
            source_type=self.source_type,
            source_key=self.source_key,
            source_url=self.source_url,
            original_filename=self.original_filename,
            attempt=self.attempt,
            source_media=source_media,
        )


class MediaInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a probe learned of a media file."""

    duration: float
    """Seconds."""
    width: int
    height: int
    fps: float
    frame_count: int | None = None
    container: str = ""
    video_codec: str = ""
    has_audio: bool = False
    sample_aspect_ratio: float = 1.0
    """Width of one stored pixel over its height (anamorphic DVD, DV, broadcast: not 1)."""
    rotation: int = 0
    """Degrees the player turns the picture (0, 90, 180, 270); ffmpeg turns decoded frames the same way."""
    interlaced: bool = False
    """Each frame holds two fields taken at different instants (field order tt, bb, tb or bt)."""
    has_alpha: bool = False
    """The picture carries transparency (an alpha pixel format, or WebM's alpha_mode tag)."""

    @property
    def display_width(self) -> int:
        """Width as a player shows it: sample aspect ratio applied, then rotation."""
        return self._display_size()[0]

    @property
    def display_height(self) -> int:
        return self._display_size()[1]

    def _display_size(self) -> tuple[int, int]:
        width, height = max(1, round(self.width * self.sample_aspect_ratio)), self.height
        return (height, width) if self.rotation in (90, 270) else (width, height)
