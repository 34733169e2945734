"""Object storage for sources and results: a local folder (embedded) or any S3 API through `minio`.

The interface is synchronous on purpose: workers call it from their threads, and the gateway from a
thread pool, so neither blocks an event loop.
"""

from __future__ import annotations

import abc
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from transmute.core.config import StorageConfig
from transmute.core.errors import StorageError
from transmute.core.scratch import PARTIAL_PREFIX, lock, remove_abandoned_partials

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


class FilesystemStorage(ObjectStorage):
    """Objects as files under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_fileobj(
        self, key: str, fileobj: BinaryIO, size: int, content_type: str = "application/octet-stream"
    ) -> int:
        target = self.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy to a temporary name, then rename: a reader never sees half a file, a retry overwrites.
        # The partial file is locked while written, so a process starting meanwhile leaves it alone.
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX)
        try:
            with open(fd, "wb") as handle:
                lock(fd)
                shutil.copyfileobj(fileobj, handle, CHUNK_SIZE)
                handle.flush()
                os.replace(partial, target)
        except OSError as exc:
            Path(partial).unlink(missing_ok=True)
            raise StorageError(f"Could not store {key!r}: {exc.strerror or exc}.") from exc
        return target.stat().st_size

    def get_file(self, key: str, path: Path) -> int:
        source = self.path_of(key)
        try:
            shutil.copyfile(source, path)
        except FileNotFoundError as exc:
            raise StorageError(f"The stored object {key!r} is missing.") from exc
        except OSError as exc:
            raise StorageError(f"Could not read {key!r}: {exc.strerror or exc}.") from exc
        return path.stat().st_size

    def size(self, key: str) -> int | None:
        try:
            return self.path_of(key).stat().st_size
        except FileNotFoundError:
            return None

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        try:
            handle = self.path_of(key).open("rb")
        except FileNotFoundError as exc:
            raise StorageError(f"The stored object {key!r} is missing.") from exc
        with handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> list[str]:
        folder = self.path_of(prefix.rstrip("/"))
        if not folder.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(PARTIAL_PREFIX)
        )

    def remove_abandoned(self) -> int:
        """Remove the partial files of writes whose process died (kill -9 mid-write); their count."""
        return remove_abandoned_partials(self.root)

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"The storage folder {self.root} is not writable.")


def create_storage(config: StorageConfig) -> ObjectStorage:
    """The storage the configuration names: S3 when an endpoint is set, else a folder under data_dir."""
    if config.s3_endpoint:
        from transmute.core.s3 import S3Storage  # minio is only needed when S3 is used

        return S3Storage(config)
    return FilesystemStorage(config.data_dir / "objects")
