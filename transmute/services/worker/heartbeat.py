"""The worker's heartbeat: files whose age says whether it is healthy (read by `transmute healthcheck worker`).

Each worker process touches its own file (the supervisor's, with its slot number added) while its Dramatiq
threads and broker consumers run; the supervisor touches the worker's file while every process beats.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("transmute")


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the heartbeat file was last touched; None when there is none."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return None


def check_heartbeat(path: Path, max_age: float) -> str | None:
    """What is wrong with a worker whose heartbeat file is `path`, in one sentence; None when it is fresh."""
    age = heartbeat_age(path)
    if age is None:
        return f"no worker heartbeat: {path} does not exist (the worker has not started, or it never got healthy)."
    if age > max_age:
        return f"the worker heartbeat is stale: {path} was last touched {age:.0f} s ago (more than {max_age:g} s)."
    writer = heartbeat_pid(path)
    if writer is not None and not pid_alive(writer):
        return f"the worker that wrote {path} (pid {writer}) is no longer running."
    return None


def heartbeat_pid(path: Path) -> int | None:
    """The process that last wrote the heartbeat file (its first word), if it says."""
    try:
        first = path.read_text().split(maxsplit=1)[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() else None


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` runs (on this host, in this PID namespace: where the healthcheck runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def touch(path: Path, note: str = "") -> None:
    """Write the heartbeat file whole (a reader never sees half a file)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(note)
        os.replace(partial, path)
    except OSError as exc:
        log.warning("could not write the heartbeat file %s: %s", path, exc)


def slot_heartbeat(path: Path, slot: int) -> Path:
    """The heartbeat file of the worker process in `slot`, beside the worker's own."""
    return path.with_name(f"{path.name}.{slot}")


def worker_problems(worker: Any, *, draining: bool) -> list[str]:
    """Why a worker process is not healthy: dead Dramatiq worker threads or broker consumer threads.

    While draining, worker threads end on purpose and consumers are no longer needed: nothing to report.
    """
    if draining:
        return []
    problems = []
    dead = sum(1 for thread in worker.workers if not thread.is_alive())
    if dead:
        problems.append(f"{dead} of {len(worker.workers)} worker thread(s) died")
    problems.extend(f"the consumer of {queue} stopped" for queue, thread in worker.consumers.items()
                    if not thread.is_alive())
    return problems


class ProcessHeartbeat:
    """A worker process's heartbeat: a thread touches its file every `interval` s while its threads are alive."""

    def __init__(self, worker: Any, draining: threading.Event, path: Path, interval: float) -> None:
        self.worker, self.draining, self.path, self.interval = worker, draining, path, interval
        self._done = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._beat, name="transmute-heartbeat", daemon=True).start()

    def stop(self) -> None:
        self._done.set()

    def _beat(self) -> None:
        while True:
            problems = worker_problems(self.worker, draining=self.draining.is_set())
            if problems:
                log.error("worker process unhealthy, heartbeat withheld: %s", "; ".join(problems))
            else:
                touch(self.path, f"{os.getpid()} {'draining' if self.draining.is_set() else 'ok'}\n")
            if self._done.wait(self.interval):
                return
