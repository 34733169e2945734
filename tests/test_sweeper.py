"""The sweeper on embedded mode's SQLite file and the filesystem: expired sources, results and records go, each
removed and counted once however many sweepers run; the lease lets one process sweep at a time."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.support.expiry import RETENTION, ended_tasks, sweep_twice_at_once
from tests.support.waiting import eventually
from transmute.services.api.sweeper import Sweeper
from transmute.settings import ExpiryConfig
from transmute.storage.filesystem import FilesystemStorage
from transmute.store import open_store


@pytest.fixture
async def stores(tmp_path):
    """Two stores over one SQLite file (two processes of a deployment), with the TTLs of RETENTION."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}"
    stores = [open_store(url, retention=RETENTION) for _ in range(2)]
    await stores[0].create_schema()
    yield stores
    for store in stores:
        await store.close()


async def test_two_sweepers_at_once_remove_and_count_each_expired_part_exactly_once(stores, tmp_path):
    await sweep_twice_at_once(stores, FilesystemStorage(tmp_path / "objects"))


async def test_of_two_stores_recording_the_same_removals_at_once_each_removal_counts_once(stores, tmp_path):
    tasks = await ended_tasks(stores[0], FilesystemStorage(tmp_path / "objects"), 6, ago=700)
    ids = [task.id for task in tasks]
    for kind in ("source", "result", "record"):
        counts = await asyncio.gather(*(store.forget(kind, ids) for store in stores))
        assert sum(counts) == 6, kind


async def test_the_sweeper_lease_has_one_holder_until_it_gives_it_up_or_it_runs_out(stores):
    first, second = stores
    assert await first.claim_lease("sweeper", "a", seconds=60)
    assert await first.claim_lease("sweeper", "a", seconds=60)  # renewed by its holder
    assert not await second.claim_lease("sweeper", "b", seconds=60)
    await first.release_lease("sweeper", "a")
    assert await second.claim_lease("sweeper", "b", seconds=-1)  # a lease its holder let run out
    assert await first.claim_lease("sweeper", "a", seconds=60)


async def test_a_sweeper_that_stops_gives_the_lease_up_so_another_process_sweeps_at_once(stores, tmp_path):
    storage = FilesystemStorage(tmp_path / "objects")
    first = Sweeper(stores[0], storage, ExpiryConfig(sweep_interval=0.1))
    running = asyncio.create_task(first.run_forever())
    await eventually(lambda: asyncio.sleep(0, first.holding), 10, "the first sweeper to hold the lease")
    assert not await stores[1].claim_lease("sweeper", "another replica", seconds=60)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert await stores[1].claim_lease("sweeper", "another replica", seconds=60)
