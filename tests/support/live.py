"""Gateways serving on a real port inside the test's event loop (uvicorn), so streams can be read live with a real
SSE client; events reach their projector through a Dramatiq stub broker. Also a Redis server of the test's own,
which a test may stop and start again (never the machine's shared one)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
import uvicorn
from dramatiq.brokers.stub import StubBroker
from litestar import Litestar

from tests.support.net import free_port
from tests.support.waiting import eventually, wait_for
from transmute.core.models import EVENTS_QUEUE, PROJECT_EVENT_ACTOR, Task, TaskEvent, next_seq, utcnow
from transmute.core.run_mode import RunMode
from transmute.services.api.app import create_app
from transmute.services.api.server import uvicorn_options
from transmute.services.broker import send
from transmute.settings import Settings


@dataclass
class Gateway:
    """One gateway process's app, serving at `url`."""

    app: Litestar
    url: str
    server: uvicorn.Server

    def stop(self) -> None:
        """Begin the server's shutdown (as SIGTERM does); `serving` waits for its end."""
        self.server.should_exit = True

    async def new_task(self, owner: str | None = None) -> str:
        """A queued task, recorded as the create route would (its source is never fetched)."""
        task = await self.app.state.services.store.create(
            target_format="gif", source_type="url", params={"format": "gif"}, owner=owner,
            source_url="http://127.0.0.1:9/never.mp4")
        return task.id

    def report(self, task_id: str, kind: str, progress: int | None = None, **fields: Any) -> None:
        """Send a worker's event to this gateway's projector (it applies it on its own thread)."""
        event = TaskEvent(task_id=task_id, seq=next_seq(), kind=kind, at=utcnow(), progress=progress, **fields)
        send(self.app.state.events_broker, EVENTS_QUEUE, PROJECT_EVENT_ACTOR, msgspec.to_builtins(event))

    async def stored(self, task_id: str) -> Task | None:
        return await self.app.state.services.store.get(task_id)


@contextlib.asynccontextmanager
async def serving(settings: Settings, mode: RunMode) -> AsyncIterator[Gateway]:
    """The gateway of `settings` on a free port of 127.0.0.1, in this event loop, while the block runs."""
    app = create_app(settings, broker=StubBroker(), mode=mode)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=10, **uvicorn_options()))
    running = asyncio.create_task(server.serve())

    async def started() -> bool:
        assert not running.done(), "the gateway stopped while starting"
        return server.started

    await eventually(started, 30, "the gateway to start")
    try:
        yield Gateway(app, f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(running, 30)  # its graceful shutdown is 10 s: longer is a hang, not a slow stop


@dataclass
class RedisServer:
    """A redis-server of the test's own on a free port of 127.0.0.1, with nothing saved to disk."""

    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        program = shutil.which("redis-server")
        assert program, "redis-server is not installed (scripts/setup.sh installs it)"
        self.process = subprocess.Popen(
            [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 10, "redis-server to answer", interval=0.05)
        return self

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A Redis of the test's own while the block runs (stopped at the end if the test left it running)."""
    server = RedisServer(free_port()).start()
    try:
        yield server
    finally:
        server.stop()
