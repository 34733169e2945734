"""What a create must pass before its body is read: room on the data folder's disk (embedded mode) and room in
the queue (TRANSMUTE_MAX_QUEUED)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE, HTTP_507_INSUFFICIENT_STORAGE

from transmute.services.api.errors import ApiError
from transmute.services.api.metrics import QUEUE_DEPTH
from transmute.settings import LimitsConfig, StorageConfig
from transmute.store import TaskStore

QUEUE_CACHE_SECONDS = 1.0
"""How long one count of the queued tasks is trusted: creates in a burst cost one COUNT a second, not one each."""
QUEUE_FULL_RETRY_AFTER = 10
"""Seconds a 503 for a full queue tells the client to wait (a conversion takes seconds to minutes)."""
FREE_DISK_CACHE_SECONDS = 1.0
"""How long one reading of the free space is trusted: while conversions write and the database syncs, a statvfs
can wait on the file system's journal, and creates in a burst would each wait on the event loop."""


class QueueDepth:
    """The tasks waiting in `queued`, counted in the store and cached briefly; each count sets the
    `transmute_queue_depth` gauge."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self._value = 0
        self._counted_at = float("-inf")

    async def current(self, *, fresh: bool = False) -> int:
        """The count; `fresh`: counted now, not up to QUEUE_CACHE_SECONDS ago (tasks may have started since)."""
        if fresh or time.monotonic() - self._counted_at >= QUEUE_CACHE_SECONDS:
            self._value = await self.store.count_queued()
            self._counted_at = time.monotonic()
            QUEUE_DEPTH.set(self._value)
        return self._value

    def added(self) -> None:
        """A create just queued one more (counted until the next count)."""
        self._value += 1


async def check_queue_room(depth: QueueDepth, limits: LimitsConfig) -> None:
    """A 503 with Retry-After when TRANSMUTE_MAX_QUEUED tasks wait already."""
    if limits.max_queued <= 0:
        return
    waiting = await depth.current()
    if waiting >= limits.max_queued:  # a refusal is decided on a fresh count, never on the cached one
        waiting = await depth.current(fresh=True)
    if waiting >= limits.max_queued:
        tasks_wait = "1 task is" if waiting == 1 else f"{waiting} tasks are"
        raise ApiError(HTTP_503_SERVICE_UNAVAILABLE, f"{tasks_wait} waiting to be converted, the most this "
                       f"server queues (TRANSMUTE_MAX_QUEUED={limits.max_queued}); try again in "
                       f"{QUEUE_FULL_RETRY_AFTER} s.", headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER)},
                       details={"queued": waiting, "max_queued": limits.max_queued,
                                "retry_after": QUEUE_FULL_RETRY_AFTER})


async def check_free_disk(storage: StorageConfig, limits: LimitsConfig) -> None:
    """A 507 when the data folder's disk has less free space than TRANSMUTE_MIN_FREE_DISK_MB (embedded mode keeps
    sources, results and the database there: a create must not fail half-way through writing them)."""
    if limits.min_free_disk_mb <= 0:
        return
    free_mb = _free_disk.megabytes(storage.data_dir)
    if free_mb < limits.min_free_disk_mb:
        raise ApiError(HTTP_507_INSUFFICIENT_STORAGE, f"The server's disk is nearly full: {free_mb:.0f} MB free under "
                       f"its data folder, less than the {limits.min_free_disk_mb:g} MB it keeps free "
                       "(TRANSMUTE_MIN_FREE_DISK_MB); no task is accepted until space is freed.",
                       details={"setting": "TRANSMUTE_MIN_FREE_DISK_MB", "free_disk_mb": round(free_mb, 1),
                                "min_free_disk_mb": limits.min_free_disk_mb})


class FreeDisk:
    """The free megabytes under a folder, read at most once every FREE_DISK_CACHE_SECONDS per folder."""

    def __init__(self) -> None:
        self._readings: dict[Path, tuple[float, float]] = {}

    def megabytes(self, folder: Path) -> float:
        now = time.monotonic()
        reading = self._readings.get(folder)
        if reading is None or now - reading[1] >= FREE_DISK_CACHE_SECONDS:
            reading = self._readings[folder] = (_free_mb(folder), now)
        return reading[0]


_free_disk = FreeDisk()


def _free_mb(folder: Path) -> float:
    while not folder.exists() and folder != folder.parent:  # not made yet: its nearest existing parent's disk
        folder = folder.parent
    return shutil.disk_usage(folder).free / (1024 * 1024)
