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
        """The ZIP's bytes; results are stored as they are (GIFs do not deflate), zip64 when needed."""
        members = (
            (entry.name, entry.modified_at, 0o644, ZIP_AUTO(entry.size, level=0),
             self.services.storage.iter_chunks(entry.key))
            for entry in self.entries
        )
        return stream_zip(members)


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
