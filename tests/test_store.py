"""The SQLite task store of embedded mode: its one writer commits concurrent writes together, correctly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from transmute.core.models import TaskEvent, TaskResult, next_seq, utcnow
from transmute.store import TaskStore, open_store
from transmute.store.schema import TaskRow


@pytest.fixture
async def store(tmp_path):
    store = open_store(f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}")
    await store.create_schema()
    yield store
    await store.close()


async def _create(store: TaskStore, number: int):
    return await store.create(target_format="gif", source_type="url", params={"n": number},
                              source_url=f"http://127.0.0.1:9/{number}.mp4")


async def test_two_hundred_concurrent_creates_each_get_their_own_task(store) -> None:
    tasks = await asyncio.gather(*(_create(store, number) for number in range(200)))
    assert len({task.id for task in tasks}) == 200
    for task in tasks:
        stored = await store.get(task.id)
        assert stored is not None and stored.params == task.params and stored.source_url == task.source_url
    assert (await store.list(page=1, per_page=1)).total == 200


async def test_a_write_that_fails_fails_only_its_own_caller(store) -> None:
    [first] = [await _create(store, 0)]
    duplicate = insert(TaskRow.__table__).values(id=int(first.id), status="queued", progress=0, target_format="gif",
                                                 source_type="url", params={}, last_seq=0,
                                                 created_at=first.created_at, updated_at=first.created_at)
    outcomes = await asyncio.gather(*(_create(store, number) for number in range(1, 20)),
                                    store._write(duplicate), *(_create(store, number) for number in range(20, 40)),
                                    return_exceptions=True)
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], IntegrityError)
    assert (await store.list(page=1, per_page=1)).total == 40


async def test_events_applied_together_keep_their_order_and_a_stale_one_changes_nothing(store) -> None:
    task = await _create(store, 0)
    at = task.created_at
    events = [TaskEvent(task_id=task.id, seq=1, kind="started", at=at + timedelta(seconds=1)),
              TaskEvent(task_id=task.id, seq=2, kind="progress", progress=30, at=at + timedelta(seconds=2)),
              TaskEvent(task_id=task.id, seq=3, kind="progress", progress=60, at=at + timedelta(seconds=3)),
              TaskEvent(task_id=task.id, seq=2, kind="progress", progress=30, at=at + timedelta(seconds=2))]
    applied = await asyncio.gather(*(store.apply_event(event) for event in events))
    assert applied == [True, True, True, False]
    stored = await store.get(task.id)
    assert stored is not None and (stored.status.value, stored.progress) == ("running", 60)


async def test_writes_still_queued_when_the_store_closes_are_committed(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}"
    store = open_store(url)
    await store.create_schema()
    pending = [asyncio.ensure_future(_create(store, number)) for number in range(50)]
    await asyncio.sleep(0)  # every create has queued its INSERT
    await store.close()
    created = await asyncio.gather(*pending)
    reopened = open_store(url)
    try:
        assert (await reopened.list(page=1, per_page=1)).total == 50
        assert {task.id for task in created} == {task.id for task in (await reopened.list(page=1, per_page=50)).tasks}
    finally:
        await reopened.close()


async def test_the_warnings_of_a_done_task_are_stored_with_its_result(store) -> None:
    warned, quiet = await _create(store, 1), await _create(store, 2)
    for task, warnings in ((warned, ["The result is 1.5 s long instead of the 4.0 s expected."]), (quiet, [])):
        result = TaskResult(key=f"results/{task.id}.gif", filename="out.gif", size=10, mime_type="image/gif",
                            format="gif", warnings=warnings)
        assert await store.apply_event(TaskEvent(task_id=task.id, seq=next_seq(), kind="done", at=utcnow(),
                                                 result=result))
    reopened = open_store(str(store.engine.url))
    try:
        assert (await reopened.get(warned.id)).result.warnings == ["The result is 1.5 s long instead of the 4.0 s "
                                                                   "expected."]
        assert (await reopened.get(quiet.id)).result.warnings == []
    finally:
        await reopened.close()


def test_the_store_and_the_gateway_load_and_open_sqlite_without_postgresql_s_driver(tmp_path) -> None:
    code = ("import sys; sys.modules['asyncpg'] = None\n"  # an import of asyncpg now fails
            "import transmute.services.api.app\n"
            "from transmute.store import is_store_unreachable, open_store\n"
            f"print(type(open_store('sqlite+aiosqlite:///{tmp_path / 'tasks.db'}')).__name__,"
            " is_store_unreachable(ValueError()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "SqliteFileStore False\n"), done.stderr


async def test_a_retry_is_a_new_attempt_that_events_of_the_earlier_one_cannot_touch(store) -> None:
    task = await _create(store, 0)
    at = task.created_at
    assert await store.apply_event(TaskEvent(task_id=task.id, seq=next_seq(), kind="started", at=at, attempt=1))
    assert await store.apply_event(TaskEvent(task_id=task.id, seq=next_seq(), kind="cancelled", at=at, attempt=1))
    assert await store.retry("999") is None and await store.retry(task.id, owner="someone else") is None

    retried = await store.retry(task.id)
    assert retried is not None and retried.status == "queued" and retried.attempt == 2
    assert retried.started_at is None and retried.completed_at is None and retried.progress == 0
    assert await store.retry(task.id) is None  # queued: not twice
    # The first run, stopped late, reports again: nothing changes.
    for kind in ("progress", "failed", "cancelled"):
        event = TaskEvent(task_id=task.id, seq=next_seq(), kind=kind, at=at, attempt=1, progress=50, error="late")
        assert not await store.apply_event(event)
    assert (await store.get(task.id)).status == "queued"
    assert await store.apply_event(TaskEvent(task_id=task.id, seq=1, kind="started", at=at, attempt=2))
    assert (await store.get(task.id)).status == "running"
    assert (await store.list(status="running")).total == 1

    assert await store.delete(task.id)
    assert await store.get(task.id) is None and not await store.delete(task.id)


async def test_a_deleted_tasks_id_is_never_given_to_a_new_task(store) -> None:
    # Reusing it would hand the new task the old one's links and the worker's memory of it (a cancel).
    first = await _create(store, 0)
    newest = await _create(store, 1)
    await store.delete(newest.id)
    again = await _create(store, 2)
    assert again.id not in (first.id, newest.id)
