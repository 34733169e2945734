"""The reference server for the route figures: one trivial Litestar JSON handler, served like the gateway
(uvicorn, one process): `uvicorn bench.trivial:app`."""

from __future__ import annotations

from litestar import Litestar, get, post


@get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@post("/ping", status_code=200)
async def ping_post(data: dict[str, object]) -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[ping, ping_post], debug=False)
