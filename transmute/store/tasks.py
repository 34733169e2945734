"""The task store: SQLAlchemy 2 async over SQLite (embedded) or PostgreSQL (distributed).

The store is the source of truth for the API. Only the gateway (creating tasks) and the projector
(applying worker events) write it; `apply_event` is a single conditional UPDATE, so it is idempotent,
order-safe and safe with several gateway replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

from transmute.core.models import Task, TaskEvent, TaskResult, TaskStatus, utcnow
from transmute.store.sqlite_writer import SqliteWriter

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,  # connection lost or refused, SQLite locked or unreadable
    InterfaceError,  # a pooled connection found closed
    PoolTimeout,  # every pooled connection busy for the whole pool timeout
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    sqlite3.OperationalError,
)
"""Errors meaning the database cannot be reached right now: the same call may well succeed in a moment."""

STORE_UNREACHABLE: tuple[type[Exception], ...] = (*DATABASE_UNAVAILABLE, ConnectionError, TimeoutError)
"""DATABASE_UNAVAILABLE, plus the bare errors of opening a connection (asyncpg's connect raises them
unwrapped) and of a wait for the store that timed out."""

FINISHED_CACHE_SIZE = 10_000
"""Finished tasks each gateway keeps in memory: done and failed are final, so a status read of one never
needs the database again (clients poll a task's status until it is done, then often once or twice more)."""

ORDERS = ("created_at", "-created_at", "updated_at", "-updated_at", "status", "-status")
FINISHED = (TaskStatus.DONE.value, TaskStatus.FAILED.value)


class Base(DeclarativeBase):
    metadata = MetaData()


class TaskRow(Base):
    __tablename__ = "transmute_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    target_format: Mapped[str] = mapped_column(String(32), index=True)
    source_type: Mapped[str] = mapped_column(String(8))
    original_filename: Mapped[str] = mapped_column(String(512), default="")
    file_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    source_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_message: Mapped[str] = mapped_column(Text, default="")
    result_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    result_filename: Mapped[str | None] = mapped_column(String(512), nullable=True)
    result_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result_mime: Mapped[str | None] = mapped_column(String(128), nullable=True)
    result_warnings: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    """TaskResult.warnings; NULL when there were none (and in rows of an older transmute)."""
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When the broker confirmed the task's convert message; NULL until then (the reconciler's work list)."""
    publish_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When a gateway replica last claimed re-sending the task (a lease, so two replicas never both send)."""

    __table_args__ = (Index("ix_transmute_tasks_status_created", "status", "created_at"),)


_INSERT_COLUMNS = tuple(column.key for column in TaskRow.__table__.columns if column.key != "id")
_INSERT = insert(TaskRow.__table__)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _to_task(row: Any) -> Task:
    """The task of a row: a TaskRow, a Core row or a namespace, read by column name."""
    result = None
    if row.result_key:
        result = TaskResult(
            key=row.result_key,
            filename=row.result_filename or "",
            size=row.result_size or 0,
            mime_type=row.result_mime or "application/octet-stream",
            format=row.target_format,
            warnings=list(row.result_warnings or []),
        )
    return Task(
        id=str(row.id),
        status=TaskStatus(row.status),
        progress=row.progress,
        target_format=row.target_format,
        source_type=row.source_type,  # type: ignore[arg-type]
        original_filename=row.original_filename,
        file_size=row.file_size,
        params=row.params,
        created_at=_aware(row.created_at),  # type: ignore[arg-type]
        updated_at=_aware(row.updated_at),  # type: ignore[arg-type]
        started_at=_aware(row.started_at),
        completed_at=_aware(row.completed_at),
        error_message=row.error_message,
        source_key=row.source_key,
        source_url=row.source_url,
        result=result,
        owner=row.owner,
        last_seq=row.last_seq,
    )


def _add_missing_columns(conn: Connection) -> None:
    """Migrate a table made by an older transmute: add the (nullable) columns it lacks."""
    present = {column["name"] for column in inspect(conn).get_columns(TaskRow.__tablename__)}
    for column in TaskRow.__table__.columns:
        if column.name not in present:
            assert column.nullable, f"a new column must be nullable to be added in place: {column.name}"
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {TaskRow.__tablename__} ADD COLUMN {column.name} {kind} NULL")


def _row_id(task_id: str) -> int | None:
    """The numeric primary key behind a task id, or None for ids no task can have."""
    if not task_id.isascii() or not task_id.isdigit() or len(task_id) > 18:
        return None
    return int(task_id)


@dataclass(frozen=True)
class Page:
    """One page of a task listing."""

    tasks: list[Task]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return (self.total + self.per_page - 1) // self.per_page if self.total else 0


class TaskStore:
    """Tasks in a relational database."""

    def __init__(self, url: str, *, pool_size: int = 10, **engine_options: Any) -> None:
        """`pool_size`: PostgreSQL connections for writes and listings (a status read pool of 4 comes on top)."""
        on_file = url.startswith("sqlite+aiosqlite:///") and ":memory:" not in url  # a file both engines open
        if url.startswith("sqlite"):
            # One writer at a time; WAL and a busy timeout keep readers and the projector from tripping.
            engine_options.setdefault("connect_args", {"timeout": 30})
        if on_file:
            # SQLite takes one writer at a time anyway; with several pooled connections the others wait in
            # its busy handler, which sleeps (up to 100 ms a try): 32 concurrent creates made ~90 a second.
            # One connection queues them in the pool instead: ~280 a second (see docs/benchmarks.md).
            engine_options.setdefault("pool_size", 1)
            engine_options.setdefault("max_overflow", 0)
        if url.startswith("postgresql"):
            # A fixed set of connections, busy requests waiting for one: with SQLAlchemy's default (5, plus 10
            # opened and closed again as load comes and goes) 32 concurrent creates spent a third of the
            # gateway's time connecting (a TLS attempt, then a server process forked per connection).
            engine_options.setdefault("pool_size", pool_size)
            engine_options.setdefault("max_overflow", 0)
        self.engine: AsyncEngine = create_async_engine(url, **engine_options)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # aiosqlite sends every DBAPI call (cursor, execute, fetch, rollback...) to its thread and back: about
        # 12 hops and 1.8 ms for one ORM `get`. The status route is a `get`, so on SQLite it reads one Core
        # row through plain sqlite3 in one thread hop instead (0.3 ms; see docs/benchmarks.md). Writes stay on
        # the async engine.
        #
        # Under load even that hop costs more than the read (submit, wake-up, GIL hand-over: 32 concurrent
        # status requests made ~830/s). So `get` first reads in the event loop itself, on one connection
        # of its own in autocommit (a WAL reader never waits for the writer; a primary-key read of a
        # cached page takes ~0.05 ms) with a busy timeout of 0: in the rare case SQLite says busy (a
        # checkpoint resetting the WAL) the read goes to the thread, which may wait, instead.
        #
        # Writes on a SQLite file go through one plain sqlite3 connection too, owned by one thread
        # (`SqliteWriter`: aiosqlite made a dozen hops per INSERT and commit); being the only writer, it never
        # waits in SQLite's sleeping busy handler, and it commits the writes that queued meanwhile together.
        self._sync_engine = None
        self._writer: SqliteWriter | None = None
        self._loop_conn: Connection | None = None
        if on_file:
            sync_url = url.replace("sqlite+aiosqlite:", "sqlite+pysqlite:", 1)
            self._sync_engine = create_engine(sync_url, connect_args={"timeout": 30, "check_same_thread": False})
            write_engine = create_engine(sync_url, pool_size=1, max_overflow=0, pool_timeout=60,
                                         connect_args={"timeout": 30, "check_same_thread": False})
            self._loop_engine = create_engine(sync_url, poolclass=StaticPool, isolation_level="AUTOCOMMIT",
                                              connect_args={"timeout": 0, "check_same_thread": False})
            # In WAL mode, synchronous=NORMAL syncs the log at checkpoints instead of at every commit: the
            # database cannot be corrupted, and only a power cut (not a crash of transmute) can lose the
            # last commits. The fsync per commit was a third of a create's time.
            event.listen(write_engine, "connect",
                         lambda dbapi_connection, _record: dbapi_connection.execute("PRAGMA synchronous=NORMAL"))
            self._writer = SqliteWriter(write_engine)
        table = TaskRow.__table__
        self._get_query = select(table).where(table.c.id == bindparam("row_id"))
        # One SELECT by key needs no transaction: without BEGIN/ROLLBACK around it, a read on PostgreSQL
        # is one round trip instead of three, and skips the ORM.
        self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        # On PostgreSQL `get` reads through a small asyncpg pool of its own: SQLAlchemy's pool checkout and
        # result layer around asyncpg cost ~0.35 ms a read (2,300 reads/s at 32 concurrent against 9,400 for
        # asyncpg alone, see docs/benchmarks.md), and the status route is one `get`.
        self._pg_dsn: str | None = None
        self._pg_pool: asyncpg.Pool | None = None
        self._pg_pool_lock = asyncio.Lock()
        if self.engine.dialect.name == "postgresql" and self.engine.dialect.driver == "asyncpg":
            self._pg_dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            self._pg_get = f"SELECT * FROM {TaskRow.__tablename__} WHERE id = $1"
        self._finished: OrderedDict[int, Task] = OrderedDict()

    async def create_schema(self) -> None:
        """Create the tables if they are missing (safe to run from several processes at once)."""
        async with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            elif self.engine.dialect.name == "postgresql":
                # Two replicas starting together must not race on CREATE TABLE.
                await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7150135)")
            await conn.run_sync(Base.metadata.create_all)
            await conn.run_sync(_add_missing_columns)

    async def close(self) -> None:
        if self._pg_pool is not None:
            await self._pg_pool.close()
            self._pg_pool = None
        await self.engine.dispose()
        if self._sync_engine is not None:
            if self._loop_conn is not None:
                self._loop_conn.close()
                self._loop_conn = None
            self._loop_engine.dispose()
            self._sync_engine.dispose()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)  # the queued writes are committed first
            self._writer.engine.dispose()

    async def _write(self, statement: Any, params: dict[str, Any] | None = None) -> Any:
        """Run one write statement and commit it: on a SQLite file through the one writer (group commit),
        elsewhere through the async engine. The statement's result (rowcount, primary key)."""
        if self._writer is not None:
            return await self._writer.write(statement, params)
        async with self.engine.begin() as conn:
            return await conn.execute(statement, params)

    async def ping(self) -> None:
        """Raise when the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def create(
        self,
        *,
        target_format: str,
        source_type: str,
        params: dict[str, Any],
        original_filename: str = "",
        file_size: int | None = None,
        source_key: str | None = None,
        source_url: str | None = None,
        owner: str | None = None,
    ) -> Task:
        """Record a new queued task and return it."""
        now = utcnow()
        values: dict[str, Any] = dict.fromkeys(_INSERT_COLUMNS)  # the columns not given here stay NULL
        values.update(
            status=TaskStatus.QUEUED.value,
            progress=0,
            target_format=target_format,
            source_type=source_type,
            original_filename=original_filename,
            file_size=file_size,
            params=params,
            source_key=source_key,
            source_url=source_url,
            error_message="",
            owner=owner,
            last_seq=0,
            created_at=now,
            updated_at=now,
        )
        # A Core INSERT with the values as parameters: one cached compiled statement for every create, no
        # ORM object or unit of work (the ORM's flush was half of a create's time on PostgreSQL).
        result = await self._write(_INSERT, values)
        return _to_task(SimpleNamespace(id=result.inserted_primary_key[0], **values))

    async def get(self, task_id: str, *, owner: str | None = None) -> Task | None:
        """The task with this id (visible to `owner` when given), or None."""
        row_id = _row_id(task_id)
        if row_id is None:
            return None
        task = self._finished.get(row_id)
        if task is None:
            task = await self._read(row_id)
            if task is None:
                return None
            if task.status.value in FINISHED:
                self._finished[row_id] = task
                if len(self._finished) > FINISHED_CACHE_SIZE:
                    self._finished.popitem(last=False)
        if owner is not None and task.owner != owner:
            return None
        return task

    async def _read(self, row_id: int) -> Task | None:
        """The task's row read from the database, by the cheapest path the database allows."""
        if self._sync_engine is not None:
            try:
                row = self._get_row_in_loop(row_id)
            except OperationalError:  # busy (or the loop's connection broke): read in a thread, which may wait
                self._drop_loop_conn()
                row = await asyncio.to_thread(self._get_row, row_id)
        elif self._pg_dsn is not None:
            record = await (await self._postgres_pool()).fetchrow(self._pg_get, row_id)
            row = None if record is None else SimpleNamespace(**record)
            if row is not None and isinstance(row.params, str | bytes):  # asyncpg hands JSON back as text
                row.params = msgspec.json.decode(row.params)
            if row is not None and isinstance(row.result_warnings, str | bytes):
                row.result_warnings = msgspec.json.decode(row.result_warnings)
        else:
            async with self._read_engine.connect() as conn:
                row = (await conn.execute(self._get_query, {"row_id": row_id})).first()
        return None if row is None else _to_task(row)

    async def _postgres_pool(self) -> asyncpg.Pool:
        if self._pg_pool is None:
            async with self._pg_pool_lock:
                if self._pg_pool is None:
                    self._pg_pool = await asyncpg.create_pool(self._pg_dsn, min_size=1, max_size=4)
        return self._pg_pool

    def _get_row_in_loop(self, row_id: int) -> Any:
        """The task's row read in the calling (event loop) thread: autocommit, never waits for a lock."""
        if self._loop_conn is None:
            self._loop_conn = self._loop_engine.connect()
        return self._loop_conn.execute(self._get_query, {"row_id": row_id}).first()

    def _drop_loop_conn(self) -> None:
        if self._loop_conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: it is dropped anyway
                self._loop_conn.close()
            self._loop_conn = None

    def _get_row(self, row_id: int) -> Any:
        """The task's row through the sync engine (a Core row: _to_task reads it by column name)."""
        with self._sync_engine.connect() as conn:  # type: ignore[union-attr]
            return conn.execute(self._get_query, {"row_id": row_id}).first()

    async def get_many(self, task_ids: Sequence[str], *, owner: str | None = None) -> dict[str, Task]:
        """The tasks among these ids that exist (and that `owner` may see), by id."""
        row_ids = {row_id for row_id in map(_row_id, task_ids) if row_id is not None}
        if not row_ids:
            return {}
        query = select(TaskRow).where(TaskRow.id.in_(row_ids))
        if owner is not None:
            query = query.where(TaskRow.owner == owner)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return {str(row.id): _to_task(row) for row in rows}

    async def list(
        self,
        *,
        page: int = 1,
        per_page: int = 20,
        status: str | None = None,
        target_format: str | None = None,
        order: str = "-created_at",
        owner: str | None = None,
    ) -> Page:
        """One page of tasks, filtered and ordered (see ORDERS)."""
        filters = []
        if status:
            filters.append(TaskRow.status == status)
        if target_format:
            filters.append(TaskRow.target_format == target_format)
        if owner is not None:
            filters.append(TaskRow.owner == owner)
        descending = order.startswith("-")
        column = getattr(TaskRow, order.lstrip("-"))
        if column is TaskRow.status:
            # Sort by life order, not alphabetically: queued, running, done, failed.
            column = case({"queued": 0, "running": 1, "done": 2, "failed": 3}, value=TaskRow.status)
        ordering = [column.desc() if descending else column.asc(), TaskRow.id.desc() if descending else TaskRow.id]
        async with self._sessions() as session:
            total = await session.scalar(select(func.count()).select_from(TaskRow).where(*filters)) or 0
            rows = (
                await session.scalars(
                    select(TaskRow).where(*filters).order_by(*ordering).offset((page - 1) * per_page).limit(per_page)
                )
            ).all()
        return Page(tasks=[_to_task(row) for row in rows], total=total, page=page, per_page=per_page)

    async def unfinished(self, *, older_than: datetime | None = None) -> list[Task]:
        """Tasks still queued or running (last changed before `older_than`, when given)."""
        query = select(TaskRow).where(TaskRow.status.not_in(FINISHED)).order_by(TaskRow.id)
        if older_than is not None:
            query = query.where(TaskRow.updated_at < older_than)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_to_task(row) for row in rows]

    async def apply_event(self, event: TaskEvent) -> bool:
        """Apply one worker event; False when it changed nothing (stale, duplicate, or task finished)."""
        row_id = _row_id(event.task_id)
        if row_id is None:
            return False
        values: dict[str, Any] = {"last_seq": event.seq, "updated_at": event.at}
        if event.file_size is not None:
            values["file_size"] = event.file_size
        if event.kind == "started":
            values.update(status=TaskStatus.RUNNING.value, progress=0, error_message="")
            values["started_at"] = func.coalesce(TaskRow.started_at, event.at)
        elif event.kind == "progress":
            values.update(status=TaskStatus.RUNNING.value, progress=max(0, min(99, event.progress or 0)))
            values["started_at"] = func.coalesce(TaskRow.started_at, event.at)
        elif event.kind == "done" and event.result is not None:
            values.update(
                status=TaskStatus.DONE.value,
                progress=100,
                completed_at=event.at,
                result_key=event.result.key,
                result_filename=event.result.filename,
                result_size=event.result.size,
                result_mime=event.result.mime_type,
                result_warnings=event.result.warnings or None,
            )
            values["started_at"] = func.coalesce(TaskRow.started_at, event.at)
        elif event.kind == "failed":
            values.update(
                status=TaskStatus.FAILED.value,
                completed_at=event.at,
                error_message=event.error or "The conversion failed.",
            )
        else:
            return False
        statement = (
            update(TaskRow)
            .where(TaskRow.id == row_id, TaskRow.last_seq < event.seq, TaskRow.status.not_in(FINISHED))
            .values(**values)
        )
        result = await self._write(statement)
        return result.rowcount == 1

    async def mark_published(self, task_id: str) -> None:
        """Record that the broker confirmed the task's convert message (the reconciler leaves it alone)."""
        await self.mark_published_many([task_id])

    async def mark_published_many(self, task_ids: Sequence[str]) -> None:
        """`mark_published` for several tasks in one UPDATE and commit."""
        row_ids = sorted({row_id for row_id in map(_row_id, task_ids) if row_id is not None})
        if not row_ids:
            return
        await self._write(
            update(TaskRow)
            .where(TaskRow.id.in_(row_ids), TaskRow.published_at.is_(None))
            .values(published_at=utcnow())
        )

    async def unpublished(self, *, older_than: datetime, limit: int = 100) -> list[Task]:
        """Queued tasks created before `older_than` whose convert message the broker never confirmed."""
        query = (
            select(TaskRow)
            .where(TaskRow.status == TaskStatus.QUEUED.value, TaskRow.published_at.is_(None),
                   TaskRow.created_at < older_than)
            .order_by(TaskRow.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_to_task(row) for row in rows]

    async def claim_publish(self, task_id: str, *, lease: float) -> bool:
        """Claim re-sending an unconfirmed task, for `lease` seconds: a conditional UPDATE, so of several
        replicas asking at once exactly one gets True."""
        row_id = _row_id(task_id)
        if row_id is None:
            return False
        now = utcnow()
        statement = (
            update(TaskRow)
            .where(
                TaskRow.id == row_id,
                TaskRow.status == TaskStatus.QUEUED.value,
                TaskRow.published_at.is_(None),
                or_(TaskRow.publish_claimed_at.is_(None), TaskRow.publish_claimed_at < now - timedelta(seconds=lease)),
            )
            .values(publish_claimed_at=now)
        )
        result = await self._write(statement)
        return result.rowcount == 1
