"""The PostgreSQL task store of distributed mode: reads, migration at start, and the reconciler's claims."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.support.waiting import eventually
from transmute.core.models import Task, TaskEvent, TaskResult
from transmute.services.api.reconciler import Reconciler
from transmute.settings import DatabaseConfig, ReconcilerConfig
from transmute.store import TaskStore, open_store, sql


async def _tasks(store: TaskStore, count: int) -> list[Task]:
    return [await store.create(target_format="gif", source_type="url", params={"format": "gif"},
                               source_url=f"http://127.0.0.1:9/{number}.mp4") for number in range(count)]


async def test_two_gateway_replicas_reconciling_at_once_send_each_unconfirmed_task_exactly_once(database) -> None:
    replicas = [open_store(database), open_store(database)]
    await replicas[0].create_schema()
    try:
        tasks = await _tasks(replicas[0], 12)
        await replicas[0].mark_published(tasks[0].id)  # confirmed by the broker when it was created
        sent: list[str] = []

        def publisher(store: TaskStore):
            async def publish(task: Task) -> bool:
                sent.append(task.id)
                await store.mark_published(task.id)
                return True
            return publish

        config = ReconcilerConfig(after=0, interval=1, lease=60)
        reconcilers = [Reconciler(store, publisher(store), config) for store in replicas]
        counts = await asyncio.gather(*(reconciler.run_once() for reconciler in reconcilers))
        assert sorted(sent, key=int) == [task.id for task in tasks[1:]]
        assert sum(counts) == 11
        assert await asyncio.gather(*(reconciler.run_once() for reconciler in reconcilers)) == [0, 0]
    finally:
        for store in replicas:
            await store.close()


async def test_a_task_whose_send_failed_is_sent_again_once_the_claim_of_the_failed_try_expires(database) -> None:
    store = open_store(database)
    await store.create_schema()
    try:
        [task] = await _tasks(store, 1)
        broker_up = False

        async def publish(task: Task) -> bool:
            if broker_up:
                await store.mark_published(task.id)
            return broker_up

        reconciler = Reconciler(store, publish, ReconcilerConfig(after=0, interval=1, lease=1))
        assert await reconciler.run_once() == 0
        broker_up = True
        assert await reconciler.run_once() == 0  # still claimed by the failed try
        # The lease is 1 s by the database's clock: passes send nothing until it runs out, then one sends it.
        assert await eventually(reconciler.run_once, 30, "the claim to expire") == 1
        assert await store.unpublished(older_than=task.created_at.replace(year=3000)) == []
    finally:
        await store.close()


async def test_a_database_made_by_an_older_transmute_is_migrated_at_start_and_keeps_its_tasks(database) -> None:
    store = open_store(database)
    await store.create_schema()
    try:
        [task] = await _tasks(store, 1)
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql("ALTER TABLE transmute_tasks DROP COLUMN published_at, "
                                       "DROP COLUMN publish_claimed_at")
        other = open_store(database)
        await asyncio.gather(other.create_schema(), store.create_schema())  # two replicas starting at once
        await other.close()
        found = await store.get(task.id)
        assert found is not None and found.source_url == task.source_url
        assert [old.id for old in await store.unpublished(older_than=task.created_at.replace(year=3000))] == [task.id]
    finally:
        await store.close()


async def test_a_task_read_back_from_postgresql_is_the_task_that_was_written_at_every_step(database) -> None:
    store, other_replica = open_store(database), open_store(database)
    await store.create_schema()
    try:
        created = await store.create(target_format="gif", source_type="upload", owner="team-a",
                                     params={"width": 320, "reverse": True}, original_filename="clip.mp4",
                                     file_size=1234, source_key="sources/1")
        assert await store.get(created.id) == created
        assert await store.get(created.id, owner="team-b") is None

        base = created.created_at
        events = [TaskEvent(task_id=created.id, seq=1, kind="started", at=base + timedelta(seconds=1)),
                  TaskEvent(task_id=created.id, seq=2, kind="progress", progress=40, at=base + timedelta(seconds=2)),
                  TaskEvent(task_id=created.id, seq=3, kind="done", at=base + timedelta(seconds=3),
                            result=TaskResult(key="results/1.gif", filename="clip.gif", size=99,
                                              mime_type="image/gif", format="gif", warnings=["short"]))]
        seen = []
        for event in events:
            assert await other_replica.apply_event(event)  # another gateway replica's projector applied it
            seen.append(await store.get(created.id, owner="team-a"))
        assert [(task.status.value, task.progress) for task in seen] == [("running", 0), ("running", 40), ("done", 100)]
        done = seen[-1]
        assert done.started_at == base + timedelta(seconds=1) and done.completed_at == base + timedelta(seconds=3)
        assert done.result is not None and done.result.key == "results/1.gif" and done.result.size == 99
        assert done.result.warnings == ["short"]
        assert done.params == {"width": 320, "reverse": True} and done.owner == "team-a"
        # A finished task is final: read again it is the same, and still hidden from other keys.
        assert await store.get(created.id, owner="team-a") == done
        assert await store.get(created.id, owner="team-b") is None
    finally:
        await store.close()
        await other_replica.close()


async def test_a_gateway_holds_no_more_postgresql_connections_than_its_pool_size_plus_five(database, monkeypatch):
    monkeypatch.setenv("TRANSMUTE_DATABASE_URL", database)
    monkeypatch.setenv("TRANSMUTE_DATABASE_POOL_SIZE", "2")
    config = DatabaseConfig.from_env()
    store = open_store(config.url, pool_size=config.pool_size)
    await store.create_schema()
    name = database.rsplit("/", 1)[1]
    try:
        tasks = await asyncio.gather(*(store.create(target_format="gif", source_type="url", params={},
                                                    source_url=f"http://127.0.0.1:9/{n}.mp4") for n in range(64)))
        assert len({task.id for task in tasks}) == 64
        assert all(await asyncio.gather(*(store.get(task.id) for task in tasks)))
        async with store.engine.connect() as conn:
            opened = (await conn.exec_driver_sql(
                f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'")).scalar_one()
        assert 2 <= opened <= 2 + 4 + 1  # the pool, the reads' pool, the LISTEN for deletes
    finally:
        await store.close()


async def test_a_done_task_deleted_through_one_gateway_process_is_gone_from_another_that_had_read_it(
        database, monkeypatch) -> None:
    # Kept for ten minutes: only the delete's announcement can take it out of the other process's cache.
    monkeypatch.setattr(sql, "FINISHED_CACHE_SECONDS", 600)
    deleting, other = open_store(database), open_store(database)
    await deleting.create_schema()
    try:
        tasks = await _tasks(deleting, 3)
        for task in tasks:
            assert await deleting.apply_event(TaskEvent(
                task_id=task.id, seq=1, kind="done", at=task.created_at,
                result=TaskResult(key=f"results/{task.id}.gif", filename="a.gif", size=9, mime_type="image/gif",
                                  format="gif")))
            assert (await other.get(task.id)).status.value == "done"  # read, and kept, by the other process

        assert await deleting.delete(tasks[0].id)  # a DELETE through one process...
        async def gone() -> bool:
            return await other.get(tasks[0].id) is None

        await eventually(gone, 10, "the other process to drop the deleted task")  # ...is a 404 through any
        # The record TTL's sweep deletes too: the same announcement.
        async with deleting.engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE transmute_tasks SET completed_at = completed_at - interval '400 days'")
        assert await deleting.forget("record", [task.id for task in tasks[1:]]) == 2

        async def all_gone() -> bool:
            return await other.get_many([task.id for task in tasks]) == {} and all(
                [await other.get(task.id) is None for task in tasks[1:]])

        await eventually(all_gone, 10, "the other process to drop the swept tasks")
    finally:
        await deleting.close()
        await other.close()
