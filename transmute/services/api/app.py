"""The gateway's app factory: routes, error mapping, OpenAPI, and the clients' lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

import anyio.to_thread
import dramatiq
from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components
from litestar.stores.base import Store
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from transmute.core.plugins import use_plugins
from transmute.core.run_mode import RunMode
from transmute.services.api.docs import SECURITY_SCHEMES, declare_security
from transmute.services.api.errors import EXCEPTION_HANDLERS
from transmute.services.api.events import EventsController
from transmute.services.api.formats import list_formats
from transmute.services.api.health import live, ready
from transmute.services.api.live import LiveState
from transmute.services.api.media import media_result
from transmute.services.api.metrics import MetricsController, RequestMetrics, install_projector_log_context
from transmute.services.api.page import page, page_assets
from transmute.services.api.projector import start_projector
from transmute.services.api.security import security_middleware
from transmute.services.api.server import ClientIdleTimeout
from transmute.services.api.services import Services
from transmute.services.api.swagger import docs_router, swagger_assets, swagger_plugin
from transmute.services.api.sweeper import Sweeper
from transmute.services.api.tasks import TasksController
from transmute.services.api.webhooks import WebhookNotifier
from transmute.services.broker import create_broker
from transmute.settings import PluginConfig, SecurityConfig, ServerConfig, Settings
from transmute.storage import create_storage
from transmute.store import open_store

if TYPE_CHECKING:
    from transmute.services.api.live.redis_state import RedisState

log = logging.getLogger("transmute.api")

ExtraLifespan = Callable[[Services], AbstractAsyncContextManager[None]]
"""Something to run alongside the gateway once its clients exist (embedded mode: the worker threads)."""


def create_app(
    settings: Settings | None = None,
    *,
    broker: dramatiq.Broker | None = None,
    events_broker: dramatiq.Broker | None = None,
    webhooks_broker: dramatiq.Broker | None = None,
    mode: RunMode | None = None,
    extra_lifespan: ExtraLifespan | None = None,
) -> Litestar:
    """The gateway. `settings` default to the environment; `broker` to the one the settings name, and the
    projector's `events_broker` and the `webhooks_broker` (whose webhooks queue the workers consume) to `broker`;
    the run `mode` to the one the settings' broker makes."""
    settings = settings or Settings.from_env()
    use_plugins(PluginConfig.from_env().plugins)
    mode = mode or (RunMode.EMBEDDED if settings.broker.in_process else RunMode.DISTRIBUTED)
    security = SecurityConfig.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = open_store(settings.database.url, pool_size=settings.database.pool_size,
                           retention=settings.expiry.retention())
        projector = sweeping = live_state = None
        try:
            await store.create_schema()
            storage = await anyio.to_thread.run_sync(create_storage, settings.storage)
            active_broker = broker or await anyio.to_thread.run_sync(create_broker, settings.broker)
            projector_broker = events_broker or active_broker
            install_projector_log_context(projector_broker)
            live_state = LiveState(store, settings.live, shared_process=mode.in_process_broker,
                                   redis=_redis_state(settings, mode))
            live_state.start()
            webhooks = WebhookNotifier(webhooks_broker or active_broker, settings.webhooks)
            services = Services(settings=settings, store=store, storage=storage, broker=active_broker, mode=mode,
                                live=live_state, webhooks=webhooks)
            app.state.services = services
            app.state.events_broker = projector_broker  # where the projector listens (tests send events there)
            projector = start_projector(projector_broker, live_state, asyncio.get_running_loop(), webhooks)
            sweeping = asyncio.create_task(Sweeper(store, storage, settings.expiry).run_forever())
            if extra_lifespan is None:
                yield
            else:
                async with extra_lifespan(services):
                    yield
        finally:
            if sweeping is not None:
                sweeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeping
            if projector is not None:
                await anyio.to_thread.run_sync(projector.stop)
            if live_state is not None:
                await live_state.stop()
            await store.close()

    return Litestar(
        route_handlers=[TasksController, EventsController, list_formats, media_result, live, ready, MetricsController,
                        page, page_assets, swagger_assets()],
        middleware=_middleware(ServerConfig.from_env(), security),
        stores=_shared_stores(settings, mode),
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[lifespan],
        on_startup=[spec_paths, functools.partial(secure_spec, keys_required=bool(security.api_keys))],
        request_max_body_size=settings.limits.max_upload_bytes + 1024 * 1024,
        state=State({"max_upload_mb": settings.limits.max_upload_mb}),
        openapi_config=openapi_config(),
        # Logging is set up by the process (transmute.logs: text or JSON); Litestar's own default set-up
        # would replace the root logger's handler with its text format.
        logging_config=None,
        debug=False,
    )


def _redis_state(settings: Settings, mode: RunMode) -> RedisState | None:
    """Distributed mode with TRANSMUTE_REDIS_URL: the shared state (embedded mode is one process: nothing to share)."""
    url = settings.live.redis_url
    if url is None or mode.in_process_broker:
        return None
    # Imported here: the Redis client comes with the `distributed` extra only.
    from transmute.services.api.live.redis_guard import connect
    from transmute.services.api.live.redis_state import RedisState

    return RedisState(connect(url), settings.live.redis_cache_ttl)


def _shared_stores(settings: Settings, mode: RunMode) -> dict[str, Store]:
    """With Redis (distributed mode), the rate limit is counted there, once for all replicas."""
    url = settings.live.redis_url
    if url is None or mode.in_process_broker:
        return {}
    from litestar.stores.redis import RedisStore

    from transmute.services.api.live.redis_guard import connect
    from transmute.services.api.rate_store import RATE_LIMIT_STORE, SharedRateStore

    return {RATE_LIMIT_STORE: SharedRateStore(RedisStore(connect(url), namespace="transmute-rate-limit"))}


def _middleware(server: ServerConfig, security: SecurityConfig) -> list:
    """The gateway's middleware, outermost first."""
    return [
        # First: the client's address (from a trusted proxy's X-Forwarded-For) is what the limiter counts by.
        DefineMiddleware(ProxyHeadersMiddleware, trusted_hosts=list(server.trusted_proxies)),
        RequestMetrics,
        DefineMiddleware(ClientIdleTimeout, idle_timeout=server.client_idle_timeout),
        *security_middleware(security),
    ]


def spec_paths(app: Litestar) -> None:
    """Write the task routes in /schema as the spec does, with their trailing slash (both forms are served)."""
    schema = app.openapi_schema
    schema.paths = {
        path if path.endswith("/") or not path.startswith("/api/") else f"{path}/": item
        for path, item in (schema.paths or {}).items()
    }


def secure_spec(app: Litestar, *, keys_required: bool) -> None:
    """Say in /schema which routes take an API key, and whether one is required (TRANSMUTE_API_KEYS)."""
    declare_security(app.openapi_schema, keys_required=keys_required)


def provide_services(request: Request) -> Services:
    return request.app.state.services


def openapi_config() -> OpenAPIConfig:
    """The OpenAPI document at /schema (Swagger UI at /schema/swagger, from files inside the installed packages),
    with the API-key schemes Swagger's "Authorize" fills."""
    return OpenAPIConfig(
        title="transmute",
        version="0.1.0",
        description="Conversion tasks: upload a video or give its URL, follow the task, download the result.",
        path="/schema",
        openapi_router=docs_router("/schema"),
        render_plugins=[swagger_plugin()],
        components=Components(security_schemes=SECURITY_SCHEMES),
    )
