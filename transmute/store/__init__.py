"""The task store: one backend per database, picked from the URL once, at start (`open_store`).

`sqlite+aiosqlite:///path.db` is embedded mode's SQLite file; `postgresql+asyncpg://...` is distributed
mode's PostgreSQL. A backend's driver is imported only when a store of that backend is opened.
"""

from __future__ import annotations

import sqlite3
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from transmute.core.retention import Retention
from transmute.store.base import TaskStore
from transmute.store.schema import ORDERS, Page

__all__ = ["ORDERS", "Page", "TaskStore", "is_database_unavailable", "is_store_unreachable", "open_store"]


def open_store(url: str, *, pool_size: int = 10, retention: Retention | None = None) -> TaskStore:
    """The task store for a SQLAlchemy URL (async driver). `pool_size`: PostgreSQL connections for writes and
    listings (status reads take up to 4 more); `retention`: how long finished tasks' parts are kept (the
    defaults of the TTL settings unless given)."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        from transmute.store.sqlite import SqliteFileStore, SqliteStore

        kind = SqliteFileStore if SqliteFileStore.serves(url) else SqliteStore
        return kind(url, retention=retention)
    if backend == "postgresql":
        from transmute.store.postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size, retention=retention)
    from transmute.store.sql import SqlTaskStore

    return SqlTaskStore(url, retention=retention)


_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,  # connection lost or refused, SQLite locked or unreadable
    InterfaceError,  # a pooled connection found closed
    PoolTimeout,  # every pooled connection busy for the whole pool timeout
    sqlite3.OperationalError,
)


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether the error means the database cannot be reached right now: the same call may well succeed in a
    moment."""
    return isinstance(exc, _UNAVAILABLE) or _is_asyncpg_unavailable(exc)


def is_store_unreachable(exc: BaseException) -> bool:
    """`is_database_unavailable`, or a bare error of opening a connection (asyncpg's connect raises them
    unwrapped) or of a wait for the store that timed out."""
    return isinstance(exc, ConnectionError | TimeoutError) or is_database_unavailable(exc)


def _is_asyncpg_unavailable(exc: BaseException) -> bool:
    # Only the PostgreSQL store loads asyncpg, and only a loaded asyncpg raises its errors.
    asyncpg = sys.modules.get("asyncpg")
    return asyncpg is not None and isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError)
