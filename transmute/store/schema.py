"""The tasks table, and the conversions between its rows and tasks (shared by every backend)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from transmute.core.models import Task, TaskResult, TaskStatus

ORDERS = ("created_at", "-created_at", "updated_at", "-updated_at", "status", "-status")
"""The orders a listing accepts: a column, descending with a leading `-`."""

FINISHED = (TaskStatus.DONE.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value)
"""No worker event changes a task in these (a retry, a user's decision, queues a failed or cancelled one again)."""
RETRYABLE = (TaskStatus.FAILED.value, TaskStatus.CANCELLED.value)


class Base(DeclarativeBase):
    metadata = MetaData()


class TaskRow(Base):
    """One task, one row."""

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
    result_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """TaskResult.metadata (what the format's plugin told about the output); NULL when empty."""
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Task.attempt; NULL for the first run (and in rows of an older transmute)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When the broker confirmed the task's convert message; NULL until then (the reconciler's work list)."""
    publish_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When a gateway replica last claimed re-sending the task (a lease, so two replicas never both send)."""

    # sqlite_autoincrement: SQLite would otherwise give a deleted newest task's id to the next task, which the
    # workers' memory of cancelled runs (by id and attempt) and any client holding the old id would mistake for it.
    __table_args__ = (Index("ix_transmute_tasks_status_created", "status", "created_at"),
                      {"sqlite_autoincrement": True})


INSERT_COLUMNS = tuple(column.key for column in TaskRow.__table__.columns if column.key != "id")
INSERT = insert(TaskRow.__table__)
"""One task's INSERT, its values given as parameters: one cached compiled statement for every create."""
SELECT_BY_ID = select(TaskRow.__table__).where(TaskRow.__table__.c.id == bindparam("row_id"))
"""One task's row as a Core row (no ORM), its id given as the `row_id` parameter."""


def row_id(task_id: str) -> int | None:
    """The numeric primary key behind a task id, or None for ids no task can have."""
    if not task_id.isascii() or not task_id.isdigit() or len(task_id) > 18:
        return None
    return int(task_id)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def to_task(row: Any) -> Task:
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
            metadata=dict(row.result_metadata or {}),
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
        attempt=row.attempt or 1,
    )


def add_missing_columns(conn: Connection) -> None:
    """Migrate a table made by an older transmute: add the (nullable) columns it lacks."""
    present = {column["name"] for column in inspect(conn).get_columns(TaskRow.__tablename__)}
    for column in TaskRow.__table__.columns:
        if column.name not in present:
            assert column.nullable, f"a new column must be nullable to be added in place: {column.name}"
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {TaskRow.__tablename__} ADD COLUMN {column.name} {kind} NULL")


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
