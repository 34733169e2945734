"""Distributed mode: the runners behind `transmute api` and `transmute worker`.

`transmute api` serves the gateway with uvicorn from an app factory (so `--workers N` gives N processes,
each a replica with its own projector and reconciler). `transmute worker` runs a small supervisor and N
worker processes; each builds its broker and storage from the environment and consumes the convert
queue with M threads. A worker needs the broker and the object storage only, never the database.

This module and the CLI are the only places that know both services (see DESIGN.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from transmute.core.config import ConfigError, Settings

if TYPE_CHECKING:
    from litestar import Litestar

log = logging.getLogger("transmute")

LOG_LEVEL_ENV = "TRANSMUTE_LOG_LEVEL"
RESPAWN_DELAY = 1.0
"""Seconds before a worker process that died is replaced (the supervisor never gives up on a slot)."""
STOP_TIMEOUT = 30.0
"""Seconds a worker process has, once asked to stop, to hand its running tasks back."""


def configure_logging(level: str | None = None) -> None:
    level = (level or os.environ.get(LOG_LEVEL_ENV) or "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def distributed_settings() -> Settings:
    """The settings from the environment, checked for what distributed mode cannot do without."""
    settings = Settings.from_env()
    if settings.broker.in_process:
        raise ConfigError(
            "Distributed mode needs a message broker: set TRANSMUTE_BROKER_URL to an amqp:// URL "
            "(or run everything in one process with 'transmute serve')."
        )
    return settings


# ------------------------------------------------------------------------------------------ api


def create_api_app() -> Litestar:
    """The gateway for `transmute api` (a uvicorn app factory): the gateway plus its reconciler."""
    from transmute.services.api.app import create_app
    from transmute.services.api.services import Services
    from transmute.services.reconciler import Reconciler

    configure_logging()
    settings = distributed_settings()

    @asynccontextmanager
    async def reconciler(services: Services) -> AsyncIterator[None]:
        loop = asyncio.create_task(Reconciler(services.store, services.publish, settings.reconciler).run_forever())
        try:
            yield
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    return create_app(settings, extra_lifespan=reconciler)


def run_api(*, host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    os.environ[LOG_LEVEL_ENV] = log_level
    configure_logging(log_level)
    distributed_settings()  # fail now, with one line, rather than in every uvicorn process
    uvicorn.run(
        "transmute.distributed:create_api_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )


# ------------------------------------------------------------------------------------------ worker


def worker_process(threads: int, log_level: str) -> None:
    """One worker process: consume the convert queue with `threads` threads until SIGTERM or SIGINT."""
    import dramatiq

    from transmute.core.models import CONVERT_QUEUE
    from transmute.core.storage import create_storage
    from transmute.services.broker import create_broker
    from transmute.services.worker.convert import Converter, register_convert_actor

    configure_logging(log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    settings = distributed_settings()
    broker = create_broker(settings.broker)
    storage = create_storage(settings.storage)
    converter = Converter(broker=broker, storage=storage, limits=settings.limits, requeue_interrupted=True)
    register_convert_actor(converter)
    worker = dramatiq.Worker(broker, queues={CONVERT_QUEUE}, worker_threads=threads, worker_timeout=1000)
    # One message per thread, none waiting: a prefetched message would sit unacknowledged behind a long
    # conversion (counting towards RabbitMQ's consumer timeout) while another worker is idle.
    worker.queue_prefetch = threads
    worker.start()
    log.info("worker process ready: %d thread(s) on %s", threads, CONVERT_QUEUE)
    stop.wait()
    log.info("worker process stopping: running tasks are handed back to the queue")
    converter.shutdown.set()
    worker.stop(timeout=int(STOP_TIMEOUT * 1000))
    broker.close()


def run_worker(*, processes: int, threads: int, log_level: str) -> None:
    """Supervise `processes` worker processes: replace any that dies, stop them all on SIGTERM/SIGINT."""
    configure_logging(log_level)
    distributed_settings()
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    def spawn(slot: int) -> multiprocessing.process.BaseProcess:
        process = context.Process(target=worker_process, args=(threads, log_level), name=f"transmute-worker-{slot}")
        process.start()
        log.info("worker process %d started (pid %s)", slot, process.pid)
        return process

    children = {slot: spawn(slot) for slot in range(processes)}
    while not stopping.wait(0.2):
        for slot, process in children.items():
            if process.is_alive() or stopping.is_set():
                continue
            log.warning("worker process %d (pid %s) died with exit code %s; replacing it", slot, process.pid,
                        process.exitcode)
            process.join()
            if stopping.wait(RESPAWN_DELAY):
                break
            children[slot] = spawn(slot)
    for process in children.values():
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT + 5
    for process in children.values():
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("worker process pid %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()
