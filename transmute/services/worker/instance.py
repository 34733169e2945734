"""Several `transmute worker` on one host: each claims an instance number, which gives it a heartbeat file and a
metrics port of its own without extra settings.

Instance 0 uses TRANSMUTE_HEARTBEAT_FILE and TRANSMUTE_METRICS_PORT as they are (one worker per container, as
deployed); instance n adds `-n` to the heartbeat file's name and n to the port. The number is claimed with an
exclusive lock on a file beside the heartbeat file: the kernel releases it when the worker exits, however it
exits, so the next worker to start takes the lowest free number again.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from transmute.settings import ConfigError, OpsConfig

MAX_INSTANCES = 64
HEARTBEAT_FILE_ENV = OpsConfig.env_name("heartbeat_file")


def instance_heartbeat(path: Path, number: int) -> Path:
    """The heartbeat file of worker instance `number` on this host (TRANSMUTE_HEARTBEAT_FILE for 0)."""
    return path if number == 0 else path.with_stem(f"{path.stem}-{number}")


@dataclass
class WorkerInstance:
    """The instance a worker claimed: its number, its heartbeat file and metrics port; holds the claim."""

    number: int
    heartbeat_file: Path
    metrics_port: int
    _lock: IO[bytes]

    def release(self) -> None:
        self._lock.close()


def claim_instance(ops: OpsConfig) -> WorkerInstance:
    """The lowest instance number no running worker on this host holds (ConfigError naming the setting when the
    heartbeat file's folder cannot hold the claim)."""
    for number in range(MAX_INSTANCES):
        heartbeat = instance_heartbeat(ops.heartbeat_file, number)
        lock_path = heartbeat.with_name(f".{heartbeat.name}.lock")
        try:
            lock = lock_path.open("ab")
        except OSError as exc:
            raise ConfigError(f"{HEARTBEAT_FILE_ENV}: cannot write beside {heartbeat} ({exc.strerror}): set it "
                              "to a file in a writable folder.") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        os.set_inheritable(lock.fileno(), False)
        port = ops.metrics_port + number if ops.metrics_port > 0 else 0
        return WorkerInstance(number=number, heartbeat_file=heartbeat, metrics_port=port, _lock=lock)
    raise ConfigError(f"{MAX_INSTANCES} workers already run with {HEARTBEAT_FILE_ENV}={ops.heartbeat_file}: "
                      "give this one another file.")
