"""Embedded mode: gateway, worker threads and projector in one process (`transmute serve`).

This module and the CLI are the only places that know both services.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
import dramatiq
from litestar import Litestar

from transmute.core.models import CONVERT_QUEUE
from transmute.core.run_mode import RunMode
from transmute.services.api.app import create_app
from transmute.services.api.services import Services
from transmute.services.broker import create_broker
from transmute.services.worker.convert import Converter, register_convert_actor
from transmute.services.worker.middleware import install_worker_middleware
from transmute.services.worker.webhooks import WebhookSender, register_webhook_actor, start_webhook_worker
from transmute.settings import BrokerConfig, Settings
from transmute.storage.scratch import clean_start

log = logging.getLogger("transmute")


def create_embedded_app(data_dir: Path, *, threads: int = 2) -> Litestar:
    """The gateway with `threads` conversion threads behind it, on the in-process broker and `data_dir`."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env(data_dir)
    # Two in-process brokers, one Dramatiq Worker each: convert messages for the worker threads, events for the
    # projector. Dramatiq wants one Worker per broker (each adds its consumer middleware to its broker;
    # two on one broker logged "You're adding a middleware of the same type twice" on every start).
    # A third for webhook deliveries, with threads of their own: a slow receiver takes no conversion thread.
    webhooks = create_broker(BrokerConfig(url=""))
    broker = create_broker(BrokerConfig(url=""))
    events = create_broker(BrokerConfig(url=""))

    @asynccontextmanager
    async def worker_threads(services: Services) -> AsyncIterator[None]:
        scratch = data_dir / "tmp"
        scratch.mkdir(exist_ok=True)
        # What a killed run left (its conversions' scratch folders, half-written objects) goes first.
        await anyio.to_thread.run_sync(clean_start, scratch, services.storage)
        converter = Converter(broker=broker, storage=services.storage, limits=settings.limits, scratch_dir=scratch,
                              events_broker=events)
        # Conversion metrics (in this app's /metrics) and task ids in log lines; the outcome is read from the
        # events the conversion sends, so the same middleware watches the events broker too.
        install_worker_middleware(broker, events_broker=events)
        register_convert_actor(converter)
        services.control = converter.control  # cancels reach the worker threads in memory: one process
        worker = dramatiq.Worker(broker, queues={CONVERT_QUEUE}, worker_threads=threads, worker_timeout=200)
        worker.start()
        register_webhook_actor(WebhookSender(broker=webhooks, config=settings.webhooks, events_broker=events,
                                             allow_private=settings.fetch.allow_private_urls))
        deliveries = start_webhook_worker(webhooks, settings.webhooks.threads)
        try:
            # The in-process broker forgets its messages when the process ends: resume what was unfinished.
            unfinished = await services.store.unfinished()
            for task in unfinished:
                await services.publish(task)
            if unfinished:
                log.info("resumed %d unfinished task(s)", len(unfinished))
            yield
        finally:
            converter.shutdown.set()
            await anyio.to_thread.run_sync(worker.stop)
            await anyio.to_thread.run_sync(deliveries.stop)

    return create_app(settings, broker=broker, events_broker=events, webhooks_broker=webhooks, mode=RunMode.EMBEDDED,
                      extra_lifespan=worker_threads)
