"""PostgreSQL (distributed mode): a fixed pool for writes and listings, an asyncpg pool of its own for `get`, and a
LISTEN connection that hears the deletes of every gateway process (so a done task cached here is dropped at once)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import JSON
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from transmute.store.schema import TaskRow
from transmute.store.sql import SqlTaskStore

log = logging.getLogger("transmute.store")

READ_POOL_SIZE = 4
"""Connections of the `get` pool, on top of `pool_size`."""
GONE_CHANNEL = "transmute_tasks_gone"
"""The NOTIFY channel of deleted tasks: the payload is their ids, comma-separated."""
LISTEN_RETRY_SECONDS = 5.0
"""While the LISTEN connection is down nothing is cached; it is opened again at most this often."""

_SELECT_BY_ID = f"SELECT * FROM {TaskRow.__tablename__} WHERE id = $1"
_JSON_COLUMNS = tuple(column.name for column in TaskRow.__table__.columns if isinstance(column.type, JSON))


class PostgresStore(SqlTaskStore):
    """Tasks in PostgreSQL, shared by every gateway replica."""

    def __init__(self, url: str, *, pool_size: int = 10, **engine_options: Any) -> None:
        """`pool_size`: connections for writes and listings (the `get` pool's come on top)."""
        # A fixed set of connections, busy requests waiting for one: opening connections as load comes and goes
        # (a TLS attempt, then a server process forked per connection) took a third of a busy gateway's time.
        engine_options.setdefault("pool_size", pool_size)
        engine_options.setdefault("max_overflow", 0)
        super().__init__(url, **engine_options)
        # The status route is one `get`: asyncpg alone reads a row in a fraction of the time SQLAlchemy's pool
        # checkout and result layer around it take.
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._read_pool: asyncpg.Pool | None = None
        self._read_pool_lock = asyncio.Lock()
        self._listener: asyncpg.Connection | None = None
        self._listen_tried_at = float("-inf")

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        # Two replicas starting together must not race on CREATE TABLE.
        await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7150135)")

    async def close(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close(timeout=2)
        if self._read_pool is not None:
            await self._read_pool.close()
            self._read_pool = None
        await super().close()

    def _may_cache_finished(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def _announce_gone(self, keys: Sequence[int]) -> None:
        try:
            await (await self._reads()).execute("SELECT pg_notify($1, $2)", GONE_CHANNEL, ",".join(map(str, keys)))
        except Exception:  # the rows are gone all the same; the other processes' caches expire within seconds
            log.warning("could not announce deleted tasks %s to the other gateway processes", keys, exc_info=True)

    async def _listen(self) -> None:
        """Open the LISTEN connection (at most every LISTEN_RETRY_SECONDS while it cannot be opened)."""
        if time.monotonic() - self._listen_tried_at < LISTEN_RETRY_SECONDS:
            return
        self._listen_tried_at = time.monotonic()
        try:
            listener = await asyncpg.connect(self._dsn)
            await listener.add_listener(GONE_CHANNEL, self._heard_gone)
        except Exception:
            log.warning("could not listen for deleted tasks; done tasks are read from the database each time",
                        exc_info=True)
            return
        listener.add_termination_listener(self._listener_lost)
        self._listener = listener

    def _heard_gone(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        for key in payload.split(","):
            if key.isdigit():
                self._finished.pop(int(key), None)

    def _listener_lost(self, _connection: Any) -> None:
        # Deletes are no longer heard: nothing cached may be trusted, and nothing is cached until it is back.
        self._listener = None
        self._finished.clear()

    async def _read(self, row_id: int) -> Any:
        if self._listener is None:
            await self._listen()
        record = await (await self._reads()).fetchrow(_SELECT_BY_ID, row_id)
        if record is None:
            return None
        row = SimpleNamespace(**record)
        for name in _JSON_COLUMNS:
            value = getattr(row, name)
            if isinstance(value, str | bytes):  # asyncpg hands JSON back as text
                setattr(row, name, msgspec.json.decode(value))
        return row

    async def _reads(self) -> asyncpg.Pool:
        if self._read_pool is None:
            async with self._read_pool_lock:
                if self._read_pool is None:
                    self._read_pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=READ_POOL_SIZE)
        return self._read_pool
