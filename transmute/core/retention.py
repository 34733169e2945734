"""How long a finished task's source, result and record are kept, and when each of them expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transmute.core.models import Task

HOUR = 3600.0
DAY = 24 * HOUR

Kind = Literal["source", "result", "record"]
"""What the sweeper removes: an uploaded source, a result file, or the task's record (with what is left)."""
KINDS: tuple[Kind, ...] = ("source", "result", "record")


@dataclass(frozen=True)
class Retention:
    """Seconds each part of a task is kept after the task ends (done, failed or cancelled); 0 keeps it for ever."""

    source_ttl: float = HOUR
    result_ttl: float = DAY
    record_ttl: float = 30 * DAY

    def ttl(self, kind: Kind) -> float:
        return {"source": self.source_ttl, "result": self.result_ttl, "record": self.record_ttl}[kind]

    def cutoff(self, kind: Kind, now: datetime) -> datetime | None:
        """Tasks that ended before this have lost their `kind`; None when it is kept for ever."""
        ttl = self.ttl(kind)
        return now - timedelta(seconds=ttl) if ttl > 0 else None

    def ends(self, kind: Kind, completed_at: datetime | None) -> datetime | None:
        """When a task that ended at `completed_at` loses its `kind`; None while it runs or when kept for ever."""
        ttl = self.ttl(kind)
        if completed_at is None or ttl <= 0:
            return None
        return completed_at + timedelta(seconds=ttl)

    def expires_at(self, task: Task) -> datetime | None:
        """When the task's file expires: its result (done), or what a retry needs (failed or cancelled: its
        uploaded source, and its record). Never later than its record. None while it runs or when kept for ever."""
        if not task.status.is_finished:
            return None
        record = self.ends("record", task.completed_at)
        if task.result is not None:
            removed, kind = task.result_removed_at, "result"
        elif task.source_key and task.status.may_retry:
            removed, kind = task.source_removed_at, "source"
        else:
            return record
        # The time promised while the task was kept, also once the sweeper (a little later) removed it; an earlier
        # removal (the TTL shortened since) is the true one.
        candidates = [when for when in (self.ends(kind, task.completed_at), removed, record) if when is not None]
        return min(candidates) if candidates else None

