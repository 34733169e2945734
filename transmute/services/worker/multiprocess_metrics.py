"""The supervisor's side of the worker metrics: prometheus_client's multiprocess mode, served on one port.

PROMETHEUS_MULTIPROC_DIR must be set before a worker process imports prometheus_client, so the supervisor
sets it (a fresh temporary folder unless it is set already, then emptied) before it starts them; it serves
the sum over all processes, live and dead.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transmute.settings import ConfigError, OpsConfig

log = logging.getLogger("transmute")
PORT_ENV, ADDRESS_ENV = OpsConfig.env_name("metrics_port"), OpsConfig.env_name("metrics_address")


class MultiprocessMetrics:
    """The worker processes' metrics, summed and served at `address`:`port` /metrics (nothing when the port is 0).

    `instance`: the worker's number on this host (instance.py); its port is TRANSMUTE_METRICS_PORT + instance;
    `collectors` are served beside the processes' metrics (the queue depth)."""

    def __init__(self, port: int, address: str = "0.0.0.0", instance: int = 0,
                 collectors: Sequence[Any] = ()) -> None:
        self.port, self.address, self.instance = port, address, instance
        self.collectors = list(collectors)
        self.server: Any = None
        self.created: str | None = None
        if port <= 0:
            return
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            if instance:  # another worker on this host uses the folder itself
                folder = os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(folder) / f"instance-{instance}")
            Path(folder).mkdir(parents=True, exist_ok=True)
            for stale in Path(folder).glob("*.db"):
                stale.unlink(missing_ok=True)
        else:
            folder = self.created = tempfile.mkdtemp(prefix="transmute-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder

    def serve(self) -> None:
        """Start serving; a port or address that cannot be used is a ConfigError naming the setting."""
        if self.port <= 0:
            return
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        for collector in self.collectors:
            registry.register(collector)
        try:
            self.server, _ = start_http_server(self.port, addr=self.address, registry=registry)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                which = f"{PORT_ENV} + {self.instance}, this worker's instance on the host" if self.instance else \
                    PORT_ENV
                raise ConfigError(f"{PORT_ENV}: port {self.port} ({which}) is in use: set {PORT_ENV} to a free "
                                  "port (a second worker on the host takes the next one), or 0 for no metrics."
                                  ) from None
            raise ConfigError(f"{ADDRESS_ENV}: cannot listen on {self.address}:{self.port} "
                              f"({exc.strerror or exc}): set it to an address of this host.") from None
        log.info("worker metrics on %s:%d/metrics", self.address, self.port)

    def process_died(self, pid: int | None) -> None:
        if self.port > 0 and pid is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.created:
            shutil.rmtree(self.created, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
