"""The sweeper: removes what outlived its TTL (uploaded sources, result files, then whole records), in batches.

It runs in the background of every gateway process (`transmute serve` and each `transmute api` replica), but
only one of a deployment sweeps at a time: the one holding the `sweeper` lease, a row in the task store
claimed with a conditional UPDATE and renewed before every batch (another replica takes over once the holder
has not renewed it for `lease_seconds`, e.g. after it died). Each removal is then recorded with a conditional
statement that only the first of two sweepers can make, so even two sweepers overlapping (a holder paused
past its lease) count each removal once. Objects go first, then the record of it: a sweeper killed between
the two leaves nothing behind, the next pass deletes the same (already gone) objects again and records them.

Routes never wait for it: the deletes run in a worker thread, the store's statements are one per batch, and
the routes tell an expired task by its `expires_at` alone, swept yet or not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field

import anyio.to_thread
from prometheus_client import Counter

from transmute.core.models import Task
from transmute.core.retention import KINDS, Kind
from transmute.services.api.task_files import remove_task_files
from transmute.settings import ExpiryConfig
from transmute.storage.base import ObjectStorage
from transmute.store import TaskStore

log = logging.getLogger("transmute.sweeper")

SWEPT = Counter("transmute_swept", "What the sweeper removed once its TTL was past, by kind (source, result, "
                                   "record)", ["kind"])
LEASE = "sweeper"
RELEASE_SECONDS = 2.0
"""How long a stopping gateway tries to give the lease up (the lease runs out by itself otherwise)."""


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class Sweeper:
    """One gateway process's sweeper (it sweeps while it holds the deployment's lease)."""

    store: TaskStore
    storage: ObjectStorage
    config: ExpiryConfig
    holder: str = field(default_factory=_holder)
    """Who this sweeper is, in the lease row: host, process and a random part (two sweepers of one process too)."""
    holding: bool = False
    """Whether the last claim of the lease was this sweeper's."""

    @property
    def lease_seconds(self) -> float:
        """How long the lease holds without being renewed: three passes' time (a dead holder's ends by then)."""
        return max(10.0, 3 * self.config.sweep_interval)

    async def run_once(self) -> dict[Kind, int]:
        """One pass, if this process holds the lease; what it removed, by kind (nothing without the lease)."""
        removed: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        for kind in KINDS:
            while await self._claim():
                tasks = await self.store.expired(kind, limit=self.config.sweep_batch)
                if not tasks:
                    break
                count = await self._sweep(kind, tasks)
                removed[kind] += count
                if len(tasks) < self.config.sweep_batch or count == 0:
                    break  # the last batch; or none recorded (storage away, or all retried meanwhile): next pass
                await asyncio.sleep(0)  # between batches the routes go first
        return removed

    async def _claim(self) -> bool:
        self.holding = await self.store.claim_lease(LEASE, self.holder, seconds=self.lease_seconds)
        return self.holding

    async def _sweep(self, kind: Kind, tasks: list[Task]) -> int:
        """Remove the batch's objects, then record it; how many this sweeper recorded."""
        deleted = await anyio.to_thread.run_sync(self._delete, kind, tasks)
        count = await self.store.forget(kind, deleted) if deleted else 0
        if count:
            SWEPT.labels(kind=kind).inc(count)
            log.info("sweeper: removed %d expired %s(s)", count, kind)
        return count

    def _delete(self, kind: Kind, tasks: list[Task]) -> list[str]:
        """Delete what the tasks lose (blocking); the ids of those whose objects are all gone."""
        done = []
        for task in tasks:
            try:
                if kind == "record":
                    remove_task_files(self.storage, task)
                elif kind == "source" and task.source_key:
                    self.storage.delete(task.source_key)
                elif kind == "result" and task.result is not None:
                    self.storage.delete(task.result.key)
            except Exception:
                log.warning("sweeper: could not remove task %s's %s; trying again next pass", task.id, kind,
                            exc_info=True)
                break  # storage is likely away: the rest waits for the next pass too
            done.append(task.id)
        return done

    async def run_forever(self) -> None:
        """A pass every `sweep_interval` seconds (the first one interval after the start), until cancelled."""
        try:
            while True:
                await asyncio.sleep(self.config.sweep_interval)
                try:
                    await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("sweeper pass failed; trying again in %g s", self.config.sweep_interval)
        finally:
            if self.holding:  # another replica takes over at once, not a lease's time later
                try:
                    await asyncio.wait_for(asyncio.shield(self.store.release_lease(LEASE, self.holder)),
                                           RELEASE_SECONDS)
                except Exception:  # the store is away: the lease runs out by itself
                    log.debug("sweeper: could not give the lease up", exc_info=True)
