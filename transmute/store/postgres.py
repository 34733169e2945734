"""PostgreSQL (distributed mode): a fixed pool for writes and listings, and an asyncpg pool of its own for `get`."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import JSON
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from transmute.store.schema import TaskRow
from transmute.store.sql import SqlTaskStore

READ_POOL_SIZE = 4
"""Connections of the `get` pool, on top of `pool_size`."""

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

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        # Two replicas starting together must not race on CREATE TABLE.
        await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7150135)")

    async def close(self) -> None:
        if self._read_pool is not None:
            await self._read_pool.close()
            self._read_pool = None
        await super().close()

    async def _read(self, row_id: int) -> Any:
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
