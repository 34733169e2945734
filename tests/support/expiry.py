"""Tasks that ended a while ago, with their objects in storage: what the sweeper finds to remove."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import anyio.to_thread
from prometheus_client import REGISTRY

from transmute.core.models import Task, TaskEvent, TaskResult, next_seq, result_key, utcnow
from transmute.core.retention import KINDS, Retention
from transmute.services.api.sweeper import Sweeper
from transmute.settings import ExpiryConfig
from transmute.storage.base import ObjectStorage
from transmute.store import TaskStore


async def ended_tasks(store: TaskStore, storage: ObjectStorage, count: int, *, ago: float,
                      kind: str = "done") -> list[Task]:
    """`count` tasks of an upload that ended (`done` with a result, or `failed`) `ago` seconds ago, their source
    and result stored."""
    tasks = []
    for _ in range(count):
        source = f"sources/{uuid.uuid4().hex}"
        await anyio.to_thread.run_sync(storage.put_bytes, source, b"source bytes")
        task = await store.create(target_format="gif", source_type="file", params={"format": "gif"},
                                  original_filename="clip.mp4", file_size=12, source_key=source)
        at = utcnow() - timedelta(seconds=ago)
        result = None
        if kind == "done":
            key = result_key(task.id, "gif")
            await anyio.to_thread.run_sync(storage.put_bytes, key, b"GIF89a result")
            result = TaskResult(key=key, filename=key.rsplit("/", 1)[-1], size=13, mime_type="image/gif",
                                format="gif")
        event = TaskEvent(task_id=task.id, seq=next_seq(), kind=kind, at=at, result=result,  # type: ignore[arg-type]
                          error=None if result else "The conversion failed.")
        assert await store.apply_event(event)
        tasks.append(await store.get(task.id))
    return tasks


RETENTION = Retention(source_ttl=60, result_ttl=120, record_ttl=600)
"""The TTLs of `sweep_twice_at_once`: a minute, two, ten."""
EXPECTED = {"source": 12, "result": 8, "record": 3}
"""What `sweep_twice_at_once` must remove, by kind, counted once."""


def swept_total() -> dict[str, float]:
    """transmute_swept_total by kind, in this process."""
    return {kind: REGISTRY.get_sample_value("transmute_swept_total", {"kind": kind}) or 0.0 for kind in KINDS}


async def sweep_twice_at_once(stores: list[TaskStore], storage: ObjectStorage) -> None:
    """Two sweepers, each on a store of its own over one database, sweep the same expired tasks at once, in
    batches of 4: each source, result and record is removed, and counted, exactly once."""
    first = stores[0]
    old = await ended_tasks(first, storage, 3, ago=700)  # everything expired, the record too
    done = await ended_tasks(first, storage, 5, ago=130)  # source and result expired
    failed = await ended_tasks(first, storage, 4, ago=90, kind="failed")  # source expired
    [fresh] = await ended_tasks(first, storage, 1, ago=10)  # nothing expired
    before = swept_total()
    config = ExpiryConfig(sweep_batch=4, sweep_interval=1)
    sweepers = [Sweeper(store, storage, config) for store in stores]

    counts = await asyncio.gather(*(sweeper.run_once() for sweeper in sweepers))

    assert {kind: sum(count[kind] for count in counts) for kind in KINDS} == EXPECTED
    assert {kind: swept_total()[kind] - before[kind] for kind in KINDS} == EXPECTED
    keys = await anyio.to_thread.run_sync(lambda: storage.list_keys("sources/") + storage.list_keys("results/"))
    assert sorted(keys) == sorted([fresh.source_key, fresh.result.key])
    assert await first.get_many([task.id for task in old]) == {}
    # Read past the store's cache of done tasks: the other sweeper's changes reach that cache within 2 s only.
    swept = await first.get_many([task.id for task in done + failed])
    for task in done + failed:
        now = swept[task.id]
        assert now.source_removed_at is not None and now.has_expired
        assert (now.result_removed_at is not None) is (task in done)
    assert not (await first.get(fresh.id)).has_expired
    again = await asyncio.gather(*(sweeper.run_once() for sweeper in sweepers))
    assert again == [dict.fromkeys(KINDS, 0)] * 2
