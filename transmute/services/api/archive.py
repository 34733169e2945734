"""The batch ZIP: done tasks' results streamed from storage into one archive, in constant memory."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio.to_thread
from stream_zip import ZIP_AUTO, stream_zip

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
            if task is None or task.status is not TaskStatus.DONE or task.result is None:
                continue
            size = await anyio.to_thread.run_sync(services.storage.size, task.result.key)
            if size is None:
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

    def stream(self) -> Iterator[bytes]:
        """The ZIP's bytes; results are stored as they are (GIFs do not deflate), zip64 when needed."""
        members = (
            (entry.name, entry.modified_at, 0o644, ZIP_AUTO(entry.size, level=0),
             self.services.storage.iter_chunks(entry.key))
            for entry in self.entries
        )
        return stream_zip(members)


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
