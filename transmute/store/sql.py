"""The task store over SQLAlchemy's async engine: what every backend shares, and the finished-task cache."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import msgspec
from sqlalchemy import and_, case, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine

from transmute.core.models import Task, TaskEvent, TaskStatus, utcnow
from transmute.core.retention import Kind, Retention
from transmute.store.base import TaskStore
from transmute.store.idempotency import IdempotencyKeys
from transmute.store.schema import (
    FINISHED,
    INSERT,
    INSERT_COLUMNS,
    RESULT_KEPT,
    RETRYABLE,
    SELECT_BY_ID,
    SOURCE_KEPT,
    Base,
    LeaseRow,
    Page,
    TaskRow,
    add_missing_columns,
    row_id,
    to_task,
)

FINISHED_CACHE_SIZE = 10_000
"""Done tasks each gateway keeps in memory (clients poll a task's status until it is done, then often once or
twice more), so those reads need no database."""
FINISHED_CACHE_SECONDS = 2.0
"""How long a cached done task is trusted. Only done tasks are cached: a failed or cancelled one may be retried, and
a done one changes only by being deleted, which a backend shared by several processes announces to all of them
(PostgreSQL: LISTEN/NOTIFY) or does not cache at all."""


class SqlTaskStore(IdempotencyKeys, TaskStore):
    """Tasks through SQLAlchemy's async engine; a backend overrides `_read` and `_write` where it has a faster way."""

    def __init__(self, url: str, *, retention: Retention | None = None, **engine_options: Any) -> None:
        self.retention = retention or Retention()
        self.engine: AsyncEngine = create_async_engine(url, **engine_options)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # One SELECT by key needs no transaction: without BEGIN/ROLLBACK around it a read is one round trip.
        self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._finished: OrderedDict[int, tuple[float, Task]] = OrderedDict()

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await self._prepare_schema(conn)
            await conn.run_sync(Base.metadata.create_all)
            await conn.run_sync(add_missing_columns)

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        """What the database needs before the tables are created, in the same transaction."""

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def _write(self, statement: Any, params: dict[str, Any] | None = None) -> Any:
        """Run one write statement and commit it; the statement's result (rowcount, primary key)."""
        async with self.engine.begin() as conn:
            return await conn.execute(statement, params)

    async def _read(self, row_id: int) -> Any:
        """The task's row (read by column name), or None."""
        async with self._read_engine.connect() as conn:
            return (await conn.execute(SELECT_BY_ID, {"row_id": row_id})).first()

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
        webhook_url: str | None = None,
        webhook_events: Sequence[str] | None = None,
    ) -> Task:
        now = utcnow()
        values: dict[str, Any] = dict.fromkeys(INSERT_COLUMNS)  # the columns not given here stay NULL
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
            webhook_url=webhook_url,
            webhook_events=list(webhook_events) if webhook_url and webhook_events else None,
            last_seq=0,
            created_at=now,
            updated_at=now,
        )
        # A Core INSERT, no ORM object or unit of work (the ORM's flush was half of a create's time).
        result = await self._write(INSERT, values)
        return to_task(SimpleNamespace(id=result.inserted_primary_key[0], **values), self.retention)

    async def get(self, task_id: str, *, owner: str | None = None) -> Task | None:
        key = row_id(task_id)
        if key is None:
            return None
        cached = self._finished.get(key)
        task = cached[1] if cached is not None and cached[0] > time.monotonic() else None
        if task is None:
            row = await self._read(key)
            if row is None:
                self._finished.pop(key, None)
                return None
            task = to_task(row, self.retention)
            if task.status is TaskStatus.DONE and self._may_cache_finished():
                self._remember_finished(key, task)
        if owner is not None and task.owner != owner:
            return None
        return task

    def _may_cache_finished(self) -> bool:
        """Whether a done task read now may be cached: this process hears of every delete meanwhile."""
        return True

    async def _announce_gone(self, keys: Sequence[int]) -> None:
        """Tell the other processes sharing the database that these tasks were deleted (their caches drop them)."""

    def _remember_finished(self, key: int, task: Task) -> None:
        self._finished[key] = (time.monotonic() + FINISHED_CACHE_SECONDS, task)
        if len(self._finished) > FINISHED_CACHE_SIZE:
            self._finished.popitem(last=False)

    async def get_many(self, task_ids: Sequence[str], *, owner: str | None = None) -> dict[str, Task]:
        keys = {key for key in map(row_id, task_ids) if key is not None}
        if not keys:
            return {}
        query = select(TaskRow).where(TaskRow.id.in_(keys))
        if owner is not None:
            query = query.where(TaskRow.owner == owner)
        return {task.id: task for task in await self._tasks(query)}

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
        filters = []
        if status:
            filters.append(TaskRow.status == status)
        if target_format:
            filters.append(TaskRow.target_format == target_format)
        if owner is not None:
            filters.append(TaskRow.owner == owner)
        query = select(TaskRow).where(*filters).order_by(*_ordering(order)).offset((page - 1) * per_page)
        async with self._sessions() as session:
            total = await session.scalar(select(func.count()).select_from(TaskRow).where(*filters)) or 0
            rows = (await session.scalars(query.limit(per_page))).all()
        return Page(tasks=[to_task(row, self.retention) for row in rows], total=total, page=page, per_page=per_page)

    async def unfinished(self, *, older_than: datetime | None = None) -> list[Task]:
        query = select(TaskRow).where(TaskRow.status.not_in(FINISHED)).order_by(TaskRow.id)
        if older_than is not None:
            query = query.where(TaskRow.updated_at < older_than)
        return await self._tasks(query)

    async def _tasks(self, query: Any) -> list[Task]:
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [to_task(row, self.retention) for row in rows]

    async def apply_event(self, event: TaskEvent) -> bool:
        key = row_id(event.task_id)
        if event.kind == "webhook":
            return key is not None and await self._record_webhook(key, event)
        values = None if key is None else _event_values(event)
        if values is None:
            return False
        conditions = [TaskRow.id == key, TaskRow.status.not_in(FINISHED)]
        stored_attempt = func.coalesce(TaskRow.attempt, 1)
        newer_seq = TaskRow.last_seq < event.seq
        if event.attempt is not None:
            # A later attempt than the store's is a run a stopping worker handed back (the worker counts it):
            # it takes over, whatever the seq of the run it replaces.
            conditions.append(stored_attempt <= event.attempt)
            values["attempt"] = event.attempt
            newer_seq = or_(stored_attempt < event.attempt, newer_seq)
        if event.kind != "cancelled":
            # A cancel is the user's decision: it stops the task whatever the worker reported last.
            conditions.append(newer_seq)
        result = await self._write(update(TaskRow).where(*conditions).values(**values))
        return result.rowcount == 1

    async def _record_webhook(self, key: int, event: TaskEvent) -> bool:
        """A delivery attempt changes the task's `webhook` only: whatever its state, seq or attempt."""
        if event.webhook is None:
            return False
        self._finished.pop(key, None)
        delivery = msgspec.to_builtins(event.webhook)
        result = await self._write(update(TaskRow).where(TaskRow.id == key).values(webhook=delivery))
        return result.rowcount == 1

    async def retry(self, task_id: str, *, owner: str | None = None) -> Task | None:
        key = row_id(task_id)
        if key is None:
            return None
        conditions = [TaskRow.id == key, TaskRow.status.in_(RETRYABLE)]
        if owner is not None:
            conditions.append(TaskRow.owner == owner)
        statement = (
            update(TaskRow)
            .where(*conditions)
            .values(
                status=TaskStatus.QUEUED.value,
                progress=0,
                error_message="",
                started_at=None,
                completed_at=None,
                result_key=None,
                result_filename=None,
                result_size=None,
                result_mime=None,
                result_warnings=None,
                result_metadata=None,
                # Events of the earlier run still on their way name that run's attempt, so they change nothing;
                # the new run's events start the seq again (whatever the clocks of the two workers).
                attempt=func.coalesce(TaskRow.attempt, 1) + 1,
                last_seq=0,
                updated_at=utcnow(),
                published_at=None,
                publish_claimed_at=None,
            )
        )
        if (await self._write(statement)).rowcount != 1:
            return None
        return await self.get(task_id)

    async def delete(self, task_id: str, *, owner: str | None = None) -> bool:
        key = row_id(task_id)
        if key is None:
            return False
        self._finished.pop(key, None)
        statement = delete(TaskRow).where(TaskRow.id == key)
        if owner is not None:
            statement = statement.where(TaskRow.owner == owner)
        if (await self._write(statement)).rowcount != 1:
            return False
        await self._announce_gone([key])
        return True

    async def count_queued(self) -> int:
        query = select(func.count()).select_from(TaskRow).where(TaskRow.status == TaskStatus.QUEUED.value)
        async with self._read_engine.connect() as conn:
            return (await conn.execute(query)).scalar_one()

    async def mark_published_many(self, task_ids: Sequence[str]) -> None:
        keys = sorted({key for key in map(row_id, task_ids) if key is not None})
        if not keys:
            return
        await self._write(
            update(TaskRow)
            .where(TaskRow.id.in_(keys), TaskRow.published_at.is_(None))
            .values(published_at=utcnow())
        )

    async def unpublished(self, *, older_than: datetime, limit: int = 100) -> list[Task]:
        query = (
            select(TaskRow)
            .where(TaskRow.status == TaskStatus.QUEUED.value, TaskRow.published_at.is_(None),
                   TaskRow.created_at < older_than)
            .order_by(TaskRow.id)
            .limit(limit)
        )
        return await self._tasks(query)

    async def claim_publish(self, task_id: str, *, lease: float) -> bool:
        key = row_id(task_id)
        if key is None:
            return False
        now = utcnow()
        # A conditional UPDATE: of several replicas claiming at once, exactly one changes the row.
        statement = (
            update(TaskRow)
            .where(
                TaskRow.id == key,
                TaskRow.status == TaskStatus.QUEUED.value,
                TaskRow.published_at.is_(None),
                or_(TaskRow.publish_claimed_at.is_(None), TaskRow.publish_claimed_at < now - timedelta(seconds=lease)),
            )
            .values(publish_claimed_at=now)
        )
        result = await self._write(statement)
        return result.rowcount == 1

    async def expired(self, kind: Kind, *, limit: int = 100) -> list[Task]:
        conditions = self._expired(kind)
        if conditions is None:
            return []
        return await self._tasks(select(TaskRow).where(*conditions).order_by(TaskRow.completed_at).limit(limit))

    def _expired(self, kind: Kind) -> list[Any] | None:
        """The conditions of a finished task whose `kind` is past its TTL and not removed; None: kept for ever."""
        now = utcnow()
        cutoff = self.retention.cutoff(kind, now)
        ended = None if cutoff is None else TaskRow.completed_at < cutoff
        result_cutoff = self.retention.cutoff("result", now)
        if kind == "source" and result_cutoff is not None and (cutoff is None or result_cutoff > cutoff):
            # A done task is never retried: its source goes with its result when that goes first.
            with_result = and_(TaskRow.status == TaskStatus.DONE.value, TaskRow.completed_at < result_cutoff)
            ended = with_result if ended is None else or_(ended, with_result)
        if ended is None:
            return None
        conditions = [ended, TaskRow.status.in_(FINISHED)]
        if kind != "record":
            # The partial index's own predicate, word for word, so the planner uses it.
            conditions.append(text(SOURCE_KEPT if kind == "source" else RESULT_KEPT))
        return conditions

    async def forget(self, kind: Kind, task_ids: Sequence[str]) -> int:
        keys = sorted({key for key in map(row_id, task_ids) if key is not None})
        conditions = self._expired(kind)
        if not keys or conditions is None:
            return 0
        conditions.append(TaskRow.id.in_(keys))
        for key in keys:
            self._finished.pop(key, None)
        if kind == "record":
            removed = (await self._write(delete(TaskRow).where(*conditions))).rowcount
            if removed:
                await self._announce_gone(keys)
            return removed
        column = "source_removed_at" if kind == "source" else "result_removed_at"
        return (await self._write(update(TaskRow).where(*conditions).values({column: utcnow()}))).rowcount

    async def claim_lease(self, name: str, holder: str, *, seconds: float) -> bool:
        now = utcnow()
        until = now + timedelta(seconds=seconds)
        renewed = await self._write(
            update(LeaseRow)
            .where(LeaseRow.name == name, or_(LeaseRow.holder == holder, LeaseRow.until < now))
            .values(holder=holder, until=until)
        )
        if renewed.rowcount == 1:
            return True
        try:  # the first claim ever: of two inserting at once, the primary key lets one in
            await self._write(insert(LeaseRow).values(name=name, holder=holder, until=until))
        except IntegrityError:
            return False
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        await self._write(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))


def _ordering(order: str) -> list[Any]:
    """ORDER BY for one of ORDERS, ties broken by id in the same direction."""
    descending = order.startswith("-")
    column: Any = getattr(TaskRow, order.lstrip("-"))
    if column is TaskRow.status:
        # Sort by life order, not alphabetically: queued, running, done, failed, cancelled.
        column = case({"queued": 0, "running": 1, "done": 2, "failed": 3, "cancelled": 4}, value=TaskRow.status)
    return [column.desc() if descending else column.asc(), TaskRow.id.desc() if descending else TaskRow.id]


def _event_values(event: TaskEvent) -> dict[str, Any] | None:
    """The columns a worker event sets, or None for an event that sets nothing."""
    values: dict[str, Any] = {"last_seq": event.seq, "updated_at": event.at}
    if event.file_size is not None:
        values["file_size"] = event.file_size
    started_at = func.coalesce(TaskRow.started_at, event.at)
    if event.kind == "started":
        values.update(status=TaskStatus.RUNNING.value, progress=0, error_message="", started_at=started_at)
    elif event.kind == "progress":
        values.update(status=TaskStatus.RUNNING.value, progress=max(0, min(99, event.progress or 0)),
                      started_at=started_at)
    elif event.kind == "done" and event.result is not None:
        values.update(
            status=TaskStatus.DONE.value,
            progress=100,
            started_at=started_at,
            completed_at=event.at,
            result_key=event.result.key,
            result_filename=event.result.filename,
            result_size=event.result.size,
            result_mime=event.result.mime_type,
            result_warnings=event.result.warnings or None,
            result_metadata=event.result.metadata or None,
        )
    elif event.kind == "cancelled":
        del values["last_seq"]  # applied whatever the seq (see apply_event): it must not hide later runs' events
        values.update(status=TaskStatus.CANCELLED.value, completed_at=event.at)
    elif event.kind == "stalled":
        # Tried once more, as the next attempt (events of the stalled run still on their way change nothing).
        values.update(status=TaskStatus.QUEUED.value, progress=0, started_at=None,
                      attempt=func.coalesce(TaskRow.attempt, 1) + 1, last_seq=0)
    elif event.kind == "failed":
        values.update(status=TaskStatus.FAILED.value, completed_at=event.at,
                      error_message=event.error or "The conversion failed.")
    else:
        return None
    return values
