"""`transmute api`: the gateway of distributed mode, served by uvicorn from an app factory (so `--workers N`
gives N processes, each a replica with its own projector and reconciler)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from transmute.logs import LOG_LEVEL_ENV, configure_logging, uvicorn_log_config
from transmute.settings import SecurityConfig, distributed_settings

if TYPE_CHECKING:
    from litestar import Litestar

log = logging.getLogger("transmute")


def create_api_app() -> Litestar:
    """The gateway for `transmute api` (a uvicorn app factory): the gateway plus its reconciler."""
    from transmute.services.api.app import create_app
    from transmute.services.api.reconciler import Reconciler
    from transmute.services.api.services import Services

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
    from transmute.services.api.server import uvicorn_options

    # Fail now, with one line, rather than with a traceback in every uvicorn process.
    distributed_settings()
    SecurityConfig.from_env()
    options = uvicorn_options()  # reads the server settings: a bad one fails here too
    log.info("transmute: gateway on http://%s:%d (%d process(es))", host, port, workers)
    uvicorn.run(
        "transmute.services.api.runner:create_api_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=uvicorn_log_config(),
        timeout_graceful_shutdown=10,
        **options,
    )
