"""Objects as files under one folder (embedded mode, or a shared volume)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from transmute.core.errors import StorageError
from transmute.storage.base import CHUNK_SIZE, ObjectStorage, check_key
from transmute.storage.scratch import PARTIAL_PREFIX, lock, remove_abandoned_partials


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
        # Copy to a temporary name, then rename: a reader never sees half a file, a retry overwrites.
        # The partial file is locked while written, so a process starting meanwhile leaves it alone.
        fd, partial = self._partial_in(target.parent)
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

    def _partial_in(self, folder: Path) -> tuple[int, str]:
        """A new partial file in `folder`, made again if a delete removed the emptied folder meanwhile."""
        for _ in range(3):
            folder.mkdir(parents=True, exist_ok=True)
            try:
                return tempfile.mkstemp(dir=folder, prefix=PARTIAL_PREFIX)
            except FileNotFoundError:
                continue
        return tempfile.mkstemp(dir=folder, prefix=PARTIAL_PREFIX)

    def delete(self, key: str) -> None:
        path = self.path_of(key)
        path.unlink(missing_ok=True)
        # A key's own folder (a task's `attempts/task_N/`) goes once empty: else one empty folder per task
        # stays for ever. Top-level folders (`sources/`, `results/`) stay.
        folder = path.parent
        if folder.parent != self.root and folder != self.root:
            with contextlib.suppress(OSError):  # not empty (another object), or gone already
                folder.rmdir()

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
