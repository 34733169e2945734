"""Health routes for probes: `/health/live` (the process answers) and `/health/ready` (its clients work)."""

from __future__ import annotations

import anyio
import anyio.to_thread
import msgspec
from litestar import Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from transmute.core.models import CONVERT_QUEUE
from transmute.services.api.services import Services

CHECK_TIMEOUT = 5.0


class HealthResponse(msgspec.Struct, kw_only=True):
    """Whether this gateway can serve: `checks` names each dependency and what is wrong with it."""

    status: str
    checks: dict[str, str] = {}


@get("/health/live", tags=["health"], summary="Liveness: the process answers", sync_to_thread=False)
def live() -> HealthResponse:
    return HealthResponse(status="ok")


async def in_thread(function, *args) -> None:
    """Run a blocking check in a thread; a timeout leaves the thread behind instead of hanging the probe."""
    await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)


def _broker_check(services: Services) -> None:
    if services.mode.in_process_broker:
        return
    # A passive declare asks RabbitMQ whether the convert queue exists: it needs a working channel.
    services.broker.channel.queue_declare(queue=CONVERT_QUEUE, passive=True)  # type: ignore[attr-defined]


@get("/health/ready", tags=["health"], summary="Readiness: task store, broker and storage answer")
async def ready(request: Request) -> Response[HealthResponse]:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}

    async def check(name: str, probe) -> None:
        try:
            with anyio.fail_after(CHECK_TIMEOUT):
                await probe()
            checks[name] = "ok"
        except TimeoutError:
            checks[name] = f"no answer within {CHECK_TIMEOUT:g} s"
        except Exception as exc:
            checks[name] = f"{type(exc).__name__}: {exc}"[:300]

    async with anyio.create_task_group() as group:
        group.start_soon(check, "store", services.store.ping)
        group.start_soon(check, "storage", lambda: in_thread(services.storage.check))
        group.start_soon(check, "broker", lambda: in_thread(_broker_check, services))
    healthy = all(value == "ok" for value in checks.values())
    return Response(
        HealthResponse(status="ok" if healthy else "unavailable", checks=checks),
        status_code=HTTP_200_OK if healthy else HTTP_503_SERVICE_UNAVAILABLE,
    )
