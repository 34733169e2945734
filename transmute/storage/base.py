"""The object storage interface: sources and results by key.

The interface is synchronous on purpose: workers call it from their threads, and the gateway from a
thread pool, so neither blocks an event loop.
"""

from __future__ import annotations

import abc
import io
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from transmute.core.errors import StorageError

CHUNK_SIZE = 1024 * 1024


def check_key(key: str) -> str:
    """A key is a relative POSIX path without `..`; anything else could escape the storage root."""
    path = PurePosixPath(key)
    if not key or key.startswith("/") or "\\" in key or any(part in ("..", ".", "") for part in key.split("/")):
        raise StorageError(f"Invalid storage key {key!r}.")
    return str(path)


class ObjectStorage(abc.ABC):
    """Where sources and results live, by key."""

    @abc.abstractmethod
    def put_fileobj(
        self, key: str, fileobj: BinaryIO, size: int, content_type: str = "application/octet-stream"
    ) -> int:
        """Store `size` bytes read from an open binary file under `key`; return the size."""

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> int:
        """Store a local file under `key`; return its size."""
        with path.open("rb") as handle:
            return self.put_fileobj(key, handle, path.stat().st_size, content_type)

    @abc.abstractmethod
    def get_file(self, key: str, path: Path) -> int:
        """Copy the object `key` to a local file; return its size."""

    @abc.abstractmethod
    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when there is no such object."""

    @abc.abstractmethod
    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The object's bytes, a chunk at a time (constant memory)."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> int:
        """Store a small object from memory; return its size."""
        return self.put_fileobj(key, io.BytesIO(data), len(data), content_type)

    def list_keys(self, prefix: str) -> list[str]:
        """The keys that start with `prefix` (a folder-like prefix ending in `/`), sorted.

        A storage that cannot list answers nothing; the worker then cannot count crashed attempts.
        """
        return []

    def remove_abandoned(self) -> int:
        """Remove what writes of dead processes left behind; their count (nothing to do by default)."""
        return 0

    def check(self) -> None:  # noqa: B027 - optional hook, nothing to check by default
        """Raise StorageError when the storage cannot be reached."""
