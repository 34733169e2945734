"""The task store's interface: what the gateway and the projector ask of the database, whichever it is.

The store is the source of truth for the API. Only the gateway (creating, cancelling, retrying and
deleting tasks) and the projector (applying worker events) write it; `apply_event` is a single conditional
UPDATE, so it is idempotent, order-safe and safe with several gateway replicas.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from transmute.core.models import Task, TaskEvent
from transmute.core.retention import Kind, Retention
from transmute.store.schema import IdempotencyClaim, Page


class TaskStore(ABC):
    """Tasks in a database (`transmute.store.open_store` picks the backend for a URL)."""

    retention: Retention = Retention()
    """How long finished tasks' parts are kept: each task read gets its `expires_at` from it."""

    @abstractmethod
    async def create_schema(self) -> None:
        """Create the tables if they are missing, and add the columns an older transmute's table lacks (safe to
        run from several processes at once)."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connections (writes still queued are committed first)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise when the database does not answer."""

    @abstractmethod
    async def create(
        self,
        *,
        target_format: str,
        source_type: str,
        params: dict[str, Any],
        original_filename: str = "",
        file_size: int | None = None,
        source_key: str | None = None,
        source_url: str | None = None,
        owner: str | None = None,
        webhook_url: str | None = None,
        webhook_events: Sequence[str] | None = None,
    ) -> Task:
        """Record a new queued task and return it."""

    @abstractmethod
    async def get(self, task_id: str, *, owner: str | None = None) -> Task | None:
        """The task with this id (visible to `owner` when given), or None."""

    @abstractmethod
    async def get_many(self, task_ids: Sequence[str], *, owner: str | None = None) -> dict[str, Task]:
        """The tasks among these ids that exist (and that `owner` may see), by id."""

    @abstractmethod
    async def list(
        self,
        *,
        page: int = 1,
        per_page: int = 20,
        status: str | None = None,
        target_format: str | None = None,
        order: str = "-created_at",
        owner: str | None = None,
    ) -> Page:
        """One page of tasks, filtered and ordered (see ORDERS)."""

    @abstractmethod
    async def unfinished(self, *, older_than: datetime | None = None) -> list[Task]:
        """Tasks still queued or running (last changed before `older_than`, when given)."""

    @abstractmethod
    async def apply_event(self, event: TaskEvent) -> bool:
        """Apply one worker event; False when it changed nothing (stale, duplicate, or task finished)."""

    @abstractmethod
    async def retry(self, task_id: str, *, owner: str | None = None) -> Task | None:
        """Queue a failed or cancelled task again (one more attempt, its result and error cleared) in one
        conditional UPDATE; the task as it is now, or None when it is not (or no longer) failed or cancelled."""

    @abstractmethod
    async def delete(self, task_id: str, *, owner: str | None = None) -> bool:
        """Remove the task's record; False when there was none (that `owner` may see)."""

    @abstractmethod
    async def count_queued(self) -> int:
        """How many tasks wait in `queued`."""

    @abstractmethod
    async def claim_idempotency_key(self, scope: str, key: str, fingerprint: str, *,
                                    newer_than: datetime) -> IdempotencyClaim | None:
        """Claim `key` of `scope` for a create with this request `fingerprint` (one INSERT: of creates racing on
        one key exactly one wins). None when this call claimed it; else what the key already holds. Claims
        made before `newer_than` (of any key) are dropped first: their keys are free again."""

    @abstractmethod
    async def idempotency_key_exists(self, scope: str, key: str) -> bool:
        """Whether a create used `key` of `scope` (its claim may since have expired: claiming it again tells)."""

    @abstractmethod
    async def bind_idempotency_key(self, scope: str, key: str, task_id: str) -> None:
        """Record the task the create that claimed the key made."""

    @abstractmethod
    async def release_idempotency_key(self, scope: str, key: str) -> None:
        """Forget the key (its create failed, or its task is gone)."""

    @abstractmethod
    async def mark_published_many(self, task_ids: Sequence[str]) -> None:
        """`mark_published` for several tasks in one UPDATE and commit."""

    async def mark_published(self, task_id: str) -> None:
        """Record that the broker confirmed the task's convert message (the reconciler leaves it alone)."""
        await self.mark_published_many([task_id])

    @abstractmethod
    async def unpublished(self, *, older_than: datetime, limit: int = 100) -> list[Task]:
        """Queued tasks created before `older_than` whose convert message the broker never confirmed."""

    @abstractmethod
    async def claim_publish(self, task_id: str, *, lease: float) -> bool:
        """Claim re-sending an unconfirmed task, for `lease` seconds: of several replicas asking at once exactly
        one gets True."""

    @abstractmethod
    async def expired(self, kind: Kind, *, limit: int = 100) -> list[Task]:
        """Finished tasks whose `kind` (source, result or record) has outlived its TTL and is not removed yet,
        those that ended first first; none when `kind` is kept for ever."""

    @abstractmethod
    async def forget(self, kind: Kind, task_ids: Sequence[str]) -> int:
        """Record that these tasks' `kind` is removed (a record: delete it), each only if it is still expired
        and not removed yet, in one conditional statement; how many changed (of two sweepers, one counts each)."""

    @abstractmethod
    async def claim_lease(self, name: str, holder: str, *, seconds: float) -> bool:
        """Hold the lease `name` for `seconds` more: True for its holder, or for anyone once it ran out (of
        several processes asking at once exactly one gets it)."""

    @abstractmethod
    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up, if `holder` has it."""
