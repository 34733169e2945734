"""One stream's mailbox (live/watch.py) on its own: what `next` gives around a close, for each of its two reasons
(the task deleted; the gateway stopping)."""

from __future__ import annotations

import msgspec

from transmute.core.models import Task, TaskStatus, utcnow
from transmute.services.api.live.watch import Signal, Watch

WAIT = 5.0
"""Seconds `next` may wait: never reached in these tests, where something is always there to give."""


def task(status: TaskStatus, progress: int, seq: int) -> Task:
    now = utcnow()
    return Task(id="7", status=status, progress=progress, target_format="gif", source_type="url",
                original_filename="a.mp4", file_size=None, params={}, created_at=now, updated_at=now, last_seq=seq)


async def test_a_final_state_offered_just_before_a_close_is_given_before_the_close() -> None:
    watch = Watch("7")
    done = msgspec.structs.replace(task(TaskStatus.DONE, 100, 3), completed_at=utcnow())
    watch.offer(done)
    watch.close(Signal.DELETED)
    assert await watch.next(WAIT) is done
    assert await watch.next(WAIT) is Signal.DELETED


async def test_a_stopping_gateway_gives_the_pending_state_then_stopping() -> None:
    watch = Watch("7")
    running = task(TaskStatus.RUNNING, 40, 2)
    watch.offer(running)
    watch.close(Signal.STOPPING)
    assert await watch.next(WAIT) is running
    assert await watch.next(WAIT) is Signal.STOPPING


async def test_a_closed_watch_takes_no_newer_state() -> None:
    watch = Watch("7")
    watch.close(Signal.STOPPING)
    watch.offer(task(TaskStatus.RUNNING, 50, 4))
    assert await watch.next(WAIT) is Signal.STOPPING


async def test_a_delete_is_kept_whichever_close_comes_first() -> None:
    stopped_first, deleted_first = Watch("7"), Watch("7")
    stopped_first.close(Signal.STOPPING)
    stopped_first.close(Signal.DELETED)
    deleted_first.close(Signal.DELETED)
    deleted_first.close(Signal.STOPPING)
    assert await stopped_first.next(WAIT) is Signal.DELETED
    assert await deleted_first.next(WAIT) is Signal.DELETED
