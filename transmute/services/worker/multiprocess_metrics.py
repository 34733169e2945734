"""The supervisor's side of the worker metrics: prometheus_client's multiprocess mode, served on one port.

PROMETHEUS_MULTIPROC_DIR must be set before a worker process imports prometheus_client, so the supervisor
sets it (a fresh temporary folder unless it is set already, then emptied) before it starts them; it serves
the sum over all processes, live and dead.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("transmute")


class MultiprocessMetrics:
    """The worker processes' metrics, summed and served at `port` /metrics (nothing when the port is 0)."""

    def __init__(self, port: int, collectors: Sequence[Any] = ()) -> None:
        self.port = port
        self.collectors = list(collectors)
        """More collectors served beside the processes' metrics (the queue depth)."""
        self.server: Any = None
        self.created: str | None = None
        if port <= 0:
            return
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            for stale in Path(folder).glob("*.db"):
                stale.unlink(missing_ok=True)
        else:
            folder = self.created = tempfile.mkdtemp(prefix="transmute-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder

    def serve(self) -> None:
        if self.port <= 0:
            return
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        for collector in self.collectors:
            registry.register(collector)
        try:
            self.server, _ = start_http_server(self.port, registry=registry)
        except OSError as exc:
            log.error("worker metrics not served: port %d: %s", self.port, exc.strerror or exc)
            return
        log.info("worker metrics on :%d/metrics", self.port)

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
