"""Scratch folders and partial files that a killed process leaves behind, and their removal at start.

A process holds an exclusive `flock` on each scratch folder (and partial storage file) for as long as it
uses it. The kernel drops the lock when the process dies, however it dies (kill -9, out of memory), so
at start a process may remove any leftover that nobody holds a lock on. It also spares whatever was
changed after it started: a folder another process has just made is not locked yet for a moment. This is
safe with several worker processes (and several `transmute worker` commands) sharing one folder on one
host; locks are per host, so the folder must not be shared between hosts over NFS.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("transmute")

PROCESS_STARTED = time.time()
"""When this process started (near enough: when it imported this module); later leftovers are spared."""

SCRATCH_PREFIX = "transmute-"
PARTIAL_PREFIX = ".partial-"


def lock(fd: int) -> None:
    """Hold `fd`'s file (or folder) for this process until the descriptor is closed or the process dies."""
    fcntl.flock(fd, fcntl.LOCK_EX)


_held: dict[Path, int] = {}
_held_lock = threading.Lock()


def make_scratch(parent: Path | None, prefix: str) -> Path:
    """A new private folder under `parent` (the system temp folder when None), locked until `remove_scratch`."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    lock(fd)
    with _held_lock:
        _held[path] = fd
    return path


def remove_scratch(path: Path) -> None:
    """Remove a folder made by `make_scratch`, then let go of its lock."""
    shutil.rmtree(path, ignore_errors=True)
    with _held_lock:
        fd = _held.pop(path, None)
    if fd is not None:
        os.close(fd)


@contextlib.contextmanager
def scratch_folder(parent: Path | None, prefix: str) -> Iterator[Path]:
    """`make_scratch` for a `with` block."""
    path = make_scratch(parent, prefix)
    try:
        yield path
    finally:
        remove_scratch(path)


def _remove_if_abandoned(path: Path, started: float) -> bool:
    """Remove `path` if no live process holds it and it was last changed before `started`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # gone meanwhile, or a link: not ours to touch
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live conversion's
        info = os.fstat(fd)
        if info.st_mtime >= started:
            return False
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def remove_abandoned_scratch(folder: Path, *, started: float = PROCESS_STARTED) -> int:
    """Remove the scratch folders (`transmute-*`) under `folder` that belong to no live conversion; their count."""
    if not folder.is_dir():
        return 0
    leftovers = [entry for entry in folder.iterdir() if entry.name.startswith(SCRATCH_PREFIX) and entry.is_dir()
                 and not entry.is_symlink()]
    return sum(_remove_if_abandoned(entry, started) for entry in leftovers)


def remove_abandoned_partials(root: Path, *, started: float = PROCESS_STARTED) -> int:
    """Remove the `.partial-*` files under `root` that no live storage write holds; their count."""
    removed = 0
    for folder, _, files in os.walk(root):
        for name in files:
            if name.startswith(PARTIAL_PREFIX):
                removed += _remove_if_abandoned(Path(folder) / name, started)
    return removed


def clean_start(scratch_dir: Path | None, storage: Any = None) -> None:
    """At a process's start: remove the scratch folders under `scratch_dir` and the partial files in
    `storage` (an ObjectStorage) that stopped processes left behind."""
    scratch = remove_abandoned_scratch(scratch_dir) if scratch_dir is not None else 0
    partials = storage.remove_abandoned() if storage is not None else 0
    if scratch or partials:
        log.info("removed %d scratch folder(s) and %d partial file(s) left by stopped processes", scratch, partials)
