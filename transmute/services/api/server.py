"""How the gateway's HTTP server holds its clients: which proxies name the client, and deadlines for slow ones.

Both `transmute serve` and `transmute api` run uvicorn with `uvicorn_options()`:

- `TRANSMUTE_TRUSTED_PROXIES`: the app reads X-Forwarded-For itself (uvicorn's `ProxyHeadersMiddleware`,
  installed by the app factory) and only from these peers; uvicorn's own proxy handling, with its separate
  `FORWARDED_ALLOW_IPS` variable, is off, so one setting decides.
- `TRANSMUTE_HEADER_TIMEOUT`: uvicorn has no deadline on reading headers (its keep-alive timeout stops once a
  byte arrives), so `DeadlineHttpToolsProtocol` closes a connection whose headers are not complete in time.
- `TRANSMUTE_CLIENT_IDLE_TIMEOUT`: `ClientIdleTimeout` answers 408 (and closes) when a request body sends
  nothing for that long while the app waits for it. It sits at the ASGI level because only there is it known
  that the app is waiting (a paused read is the server's doing, not the client's).
- `TRANSMUTE_MAX_CONNECTIONS`: uvicorn's `limit_concurrency`: past it a request gets uvicorn's 503.

When the server stops, the protocol also ends the open `/events/` streams at once: uvicorn waits for open
responses before it stops, and a stream would otherwise last the whole graceful-shutdown wait.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import anyio
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from transmute.services.api.live.hub import end_all_streams
from transmute.settings import ServerConfig

server_config = functools.cache(ServerConfig.from_env)
"""The server settings, read once per process (the protocol below is built for every connection)."""


def uvicorn_options() -> dict[str, Any]:
    """What `uvicorn.run` needs, besides host, port and logging, for the settings above."""
    config = server_config()
    return {
        "http": DeadlineHttpToolsProtocol,
        "proxy_headers": False,  # the app reads X-Forwarded-For, from TRANSMUTE_TRUSTED_PROXIES only
        # uvicorn counts the connection being served too: one more lets exactly max_connections in.
        "limit_concurrency": config.max_connections + 1,
    }


def _timeout_response() -> bytes:
    body = json.dumps({"success": False, "error": "The request headers took too long to arrive."}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline from a request's start to the end of its headers.

    The clock starts when the connection opens and again when a later request's first byte arrives (between
    requests uvicorn's keep-alive timeout applies); a trickle of header bytes does not reset it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_deadline: asyncio.TimerHandle | None = None

    def _arm_header_deadline(self) -> None:
        if self.header_deadline is None:
            self.header_deadline = self.loop.call_later(server_config().header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_slow(self) -> None:
        self.header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # not in the middle of another answer
            self.transport.write(_timeout_response())
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        end_all_streams()
        super().shutdown()


class ClientIdleTimeout:
    """A 408 (connection closed) when a request body sends nothing for `client_idle_timeout` seconds while the
    app waits for it. Once the body is complete, `receive` is passed through untimed (a streaming answer
    waits on it for the client's disconnect)."""

    def __init__(self, app: ASGIApp, idle_timeout: float) -> None:
        self.app = app
        self.idle_timeout = idle_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_complete = False

        async def receive_in_time() -> Message:
            nonlocal body_complete
            if body_complete:
                return await receive()
            try:
                with anyio.fail_after(self.idle_timeout):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    status_code=408,
                    detail=f"The request body sent nothing for {self.idle_timeout:g} s; the upload was stopped.",
                    headers={"Connection": "close"},
                ) from None
            body_complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, receive_in_time, send)
