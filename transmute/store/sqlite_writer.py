"""The one writer of a SQLite file: statements queued from the event loop, committed in batches by one thread.

SQLite takes one writer at a time, and each commit is the costly part of a write. Creates and worker
events arriving together are run in one transaction and committed once (group commit): under 32
concurrent creates a commit carries ~10 statements instead of one. A statement that fails makes its
batch run again one statement per transaction, so only its own caller sees the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

BATCH_LIMIT = 256
"""Statements at most in one transaction (keeps one commit, and the wait behind it, short)."""


@dataclass(frozen=True)
class Written:
    """What one write left behind, read before its transaction ends (its cursor is gone after the commit)."""

    rowcount: int
    inserted_primary_key: tuple[Any, ...] | None


@dataclass(frozen=True)
class _Job:
    statement: Any
    params: dict[str, Any] | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Written]


_STOP = object()


class SqliteWriter:
    """Runs write statements on `engine` (one pooled connection) in one thread, a commit per batch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def write(self, statement: Any, params: dict[str, Any] | None = None) -> Written:
        """Run one statement; return once the transaction holding it is committed."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Written] = loop.create_future()
        self._jobs.put(_Job(statement, params, loop, future))
        return await future

    def close(self) -> None:
        """Finish the queued writes, then stop the thread (blocking: call it from a thread)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(_STOP)
            thread.join()

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            batch, stop = self._next_batch()
            if batch:
                self._commit(batch)
            if stop:
                return

    def _next_batch(self) -> tuple[list[_Job], bool]:
        item = self._jobs.get()
        if item is _STOP:
            return [], True
        batch = [item]
        while len(batch) < BATCH_LIMIT:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, batch: list[_Job]) -> None:
        outcomes: list[Written | BaseException]
        try:
            with self.engine.begin() as conn:
                outcomes = [_execute(conn, job) for job in batch]
        except Exception:
            # Which statement failed is unknown once the batch rolled back: run each alone.
            outcomes = []
            for job in batch:
                try:
                    with self.engine.begin() as conn:
                        outcomes.append(_execute(conn, job))
                except Exception as exc:
                    outcomes.append(exc)
        for job, outcome in zip(batch, outcomes, strict=True):
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody is waiting
                job.loop.call_soon_threadsafe(_settle, job.future, outcome)


def _execute(conn: Connection, job: _Job) -> Written:
    result = conn.execute(job.statement, job.params)
    key = tuple(result.inserted_primary_key) if job.statement.is_insert else None
    return Written(rowcount=result.rowcount, inserted_primary_key=key)


def _settle(future: asyncio.Future[Written], outcome: Written | BaseException) -> None:
    if future.done():  # the caller was cancelled; the write itself stands
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
