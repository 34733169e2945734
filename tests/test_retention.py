"""`expires_at`: the time a finished task's file is promised until, before and after the sweeper removed it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from transmute.core.models import Task, TaskStatus
from transmute.core.retention import Retention

ENDED = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)


def cancelled_upload(**fields: object) -> Task:
    task = Task(id="7", status=TaskStatus.CANCELLED, progress=30, target_format="gif", source_type="file",
                original_filename="clip.mp4", file_size=10, params={}, created_at=ENDED, updated_at=ENDED,
                source_key="sources/7", completed_at=ENDED)
    return msgspec.structs.replace(task, **fields)


def test_the_promised_expiry_stays_the_same_once_the_sweeper_removed_the_source_a_moment_later():
    retention = Retention(source_ttl=60)
    promised = retention.expires_at(cancelled_upload())
    assert promised == ENDED + timedelta(seconds=60)
    swept = cancelled_upload(source_removed_at=ENDED + timedelta(seconds=60.8))  # the sweeper's next round
    assert retention.expires_at(swept) == promised


def test_a_source_removed_before_its_time_tells_when_it_really_went():
    # Removed under a shorter TTL than today's, or kept for ever today: the removal is the truth.
    removed = ENDED + timedelta(seconds=30)
    assert Retention(source_ttl=3600).expires_at(cancelled_upload(source_removed_at=removed)) == removed
    assert Retention(source_ttl=0, record_ttl=0).expires_at(cancelled_upload(source_removed_at=removed)) == removed
