"""SQLite: a file in embedded mode (reads in the event loop, one writer thread), or any other SQLite URL."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import StaticPool

from transmute.store.schema import SELECT_BY_ID
from transmute.store.sql import SqlTaskStore
from transmute.store.sqlite_writer import SqliteWriter


class SqliteStore(SqlTaskStore):
    """A SQLite database through aiosqlite alone (in memory, for one): WAL, and a busy timeout."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        # One writer at a time; WAL and a busy timeout keep readers and the projector from tripping.
        engine_options.setdefault("connect_args", {"timeout": 30})
        super().__init__(url, **engine_options)

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        await conn.exec_driver_sql("PRAGMA journal_mode=WAL")


class SqliteFileStore(SqliteStore):
    """A SQLite file: `get` reads in the event loop, writes go through one thread that commits them in groups.

    aiosqlite sends every DBAPI call to its thread and back (about a dozen hops for one read or one INSERT and
    its commit), so the hot paths use plain sqlite3 connections; listings and the schema stay on aiosqlite.
    """

    @staticmethod
    def serves(url: str) -> bool:
        """Whether the URL names a SQLite file that plain sqlite3 connections can open too."""
        return url.startswith("sqlite+aiosqlite:///") and ":memory:" not in url

    def __init__(self, url: str, **engine_options: Any) -> None:
        # SQLite takes one writer at a time: the async engine's writers (the schema) wait in the pool, not in
        # SQLite's busy handler, which sleeps up to 100 ms a try.
        engine_options.setdefault("pool_size", 1)
        engine_options.setdefault("max_overflow", 0)
        super().__init__(url, **engine_options)
        sync_url = url.replace("sqlite+aiosqlite:", "sqlite+pysqlite:", 1)
        # A read in the event loop, on a connection of its own in autocommit: a WAL reader never waits for the
        # writer, and a busy timeout of 0 makes the rare busy moment (a checkpoint resetting the WAL) an error
        # at once, the read then going to a thread that may wait (a thread hop costs more than the read).
        self._loop_engine = create_engine(sync_url, poolclass=StaticPool, isolation_level="AUTOCOMMIT",
                                          connect_args={"timeout": 0, "check_same_thread": False})
        self._loop_conn: Connection | None = None
        self._thread_engine = create_engine(sync_url, connect_args={"timeout": 30, "check_same_thread": False})
        # Being the only writer, the writer thread never waits in SQLite's busy handler.
        self._writer = SqliteWriter(_writer_engine(sync_url))

    async def close(self) -> None:
        await super().close()
        self._drop_loop_conn()
        self._loop_engine.dispose()
        self._thread_engine.dispose()
        await asyncio.to_thread(self._writer.close)  # the queued writes are committed first
        self._writer.engine.dispose()

    async def _write(self, statement: Any, params: dict[str, Any] | None = None) -> Any:
        return await self._writer.write(statement, params)

    async def _read(self, row_id: int) -> Any:
        try:
            return self._read_in_loop(row_id)
        except OperationalError:  # busy (or the loop's connection broke): read in a thread, which may wait
            self._drop_loop_conn()
            return await asyncio.to_thread(self._read_in_thread, row_id)

    def _read_in_loop(self, row_id: int) -> Any:
        if self._loop_conn is None:
            self._loop_conn = self._loop_engine.connect()
        return self._loop_conn.execute(SELECT_BY_ID, {"row_id": row_id}).first()

    def _read_in_thread(self, row_id: int) -> Any:
        with self._thread_engine.connect() as conn:
            return conn.execute(SELECT_BY_ID, {"row_id": row_id}).first()

    def _drop_loop_conn(self) -> None:
        if self._loop_conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: it is dropped anyway
                self._loop_conn.close()
            self._loop_conn = None


def _writer_engine(sync_url: str) -> Engine:
    """The writer thread's engine: one connection, with synchronous=NORMAL."""
    engine = create_engine(sync_url, pool_size=1, max_overflow=0, pool_timeout=60,
                           connect_args={"timeout": 30, "check_same_thread": False})
    # Under WAL, NORMAL syncs the log at checkpoints instead of at every commit: the database cannot be
    # corrupted, and only a power cut (not a crash of transmute) can lose the last commits.
    event.listen(engine, "connect", _synchronous_normal)
    return engine


def _synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
