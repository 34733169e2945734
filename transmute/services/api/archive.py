"""The batch ZIP: done tasks' results streamed from storage into one archive, in constant memory."""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import anyio.to_thread
from stream_zip import NO_COMPRESSION_32, NO_COMPRESSION_64, stream_zip

from transmute.core.models import TaskStatus, utcnow
from transmute.services.api.services import Services


@dataclass(frozen=True)
class ArchiveEntry:
    name: str
    key: str
    size: int
    modified_at: object


@dataclass
class BatchArchive:
    """The files one batch download will hold, decided before the first byte is sent (for the headers)."""

    services: Services
    entries: list[ArchiveEntry] = field(default_factory=list)
    filename: str = ""
    missing: list[str] = field(default_factory=list)
    """Requested ids of no task (or of another key's task)."""
    unfinished: dict[str, str] = field(default_factory=dict)
    """Requested tasks without a file, by id: their status (queued, running, failed...), or `expired`."""

    @classmethod
    async def prepare(cls, services: Services, task_ids: list[str], *, owner: str | None) -> BatchArchive:
        """Pick the requested tasks that are done and whose result is in storage; skip the rest."""
        tasks = await services.store.get_many(task_ids, owner=owner)
        # A random tail keeps two archives of the same second apart (curl -OJ will not overwrite a file).
        filename = f"transmute_results_{utcnow():%Y%m%d_%H%M%S}_{secrets.token_hex(3)}.zip"
        archive = cls(services=services, filename=filename)
        used: set[str] = set()
        for task_id in task_ids:
            task = tasks.get(task_id)
            if task is None:
                archive.missing.append(task_id)
                continue
            if task.status is not TaskStatus.DONE or task.result is None:
                archive.unfinished[task_id] = task.status.value
                continue
            if task.has_expired:
                archive.unfinished[task_id] = "expired"
                continue
            size = await anyio.to_thread.run_sync(services.storage.size, task.result.key)
            if size is None:
                archive.unfinished[task_id] = "expired"
                continue
            archive.entries.append(
                ArchiveEntry(
                    name=_unique(task.result.filename, used),
                    key=task.result.key,
                    size=size,
                    modified_at=task.completed_at or task.updated_at,
                )
            )
        return archive

    def why_skipped(self) -> str:
        """The skipped tasks in words: which ids do not exist, which have no file yet and why."""
        parts = []
        if self.missing:
            parts.append(f"{_listed(self.missing)} {'does' if len(self.missing) == 1 else 'do'} not exist")
        parts.extend(f"task {task_id} {_HAS_NO_FILE.get(status, f'is {status}')}"
                     for task_id, status in self.unfinished.items())
        return "; ".join(parts)

    def stream(self) -> Iterator[bytes]:
        """The ZIP's bytes, each result stored as it is (GIFs do not deflate), zip64 when the archive needs it.

        A stored member's header carries its size and CRC-32 before its bytes, and stream-zip takes them
        up front: each result is read twice from storage, once for its CRC (just before its turn, in the
        thread that streams) and once into the archive, a chunk at a time both times (constant memory).
        """
        zip64 = needs_zip64(entry.size for entry in self.entries)
        return stream_zip(self._member(entry, zip64=zip64) for entry in self.entries)

    def _member(self, entry: ArchiveEntry, *, zip64: bool) -> tuple:
        size, crc = 0, 0
        for chunk in self.services.storage.iter_chunks(entry.key):
            size, crc = size + len(chunk), zlib.crc32(chunk, crc)
        method = (NO_COMPRESSION_64 if zip64 else NO_COMPRESSION_32)(size, crc)
        return entry.name, entry.modified_at, 0o644, method, self.services.storage.iter_chunks(entry.key)


ZIP32_LIMIT = 0xFFFFFFFF
HEADERS_ALLOWANCE = 1024 * 1024
"""More than the local headers and names of the largest batch take (50 members, names of 255 characters)."""


def needs_zip64(sizes: Iterable[int]) -> bool:
    """Whether an archive of members of these sizes needs zip64: a member or an offset past 4 GiB.

    Decided once for the whole archive from the sizes storage reports, with room for the headers, since
    stream-zip's stored methods are either zip32 or zip64 (only its deflating ZIP_AUTO switches by offset).
    """
    return sum(sizes) + HEADERS_ALLOWANCE > ZIP32_LIMIT


_HAS_NO_FILE = {
    "queued": "is queued, not converted yet",
    "running": "is still running",
    "failed": "failed, so it has no file",
    "cancelled": "was cancelled",
    "expired": "is done but its file has expired",
    "done": "is done but has no file",
}


def _listed(ids: list[str]) -> str:
    return ("task " if len(ids) == 1 else "tasks ") + ", ".join(ids)


def _unique(name: str, used: set[str]) -> str:
    """A safe entry name (no folders, no leading dots), unique within the archive."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lstrip(".") or "result"
    stem, dot, ext = base.rpartition(".")
    if not stem:
        stem, dot, ext = base, "", ""
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}_{n}{dot}{ext}"
    used.add(candidate)
    return candidate
