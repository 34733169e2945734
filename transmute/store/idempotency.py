"""The `Idempotency-Key`s of creates, in the task store's database (one row per key and scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from transmute.store.schema import IdempotencyClaim, IdempotencyRow, row_id


class IdempotencyKeys:
    """TaskStore's idempotency methods over SqlTaskStore's `_write` and `_read_engine`."""

    _read_engine: Any

    async def _write(self, statement: Any, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    async def claim_idempotency_key(self, scope: str, key: str, fingerprint: str, *,
                                    newer_than: datetime) -> IdempotencyClaim | None:
        this = (IdempotencyRow.scope == scope, IdempotencyRow.key == key)
        # Every key past its time goes (this one included): an indexed range holding only what expired since
        # the last keyed create, so the table keeps about a day of keys.
        await self._write(delete(IdempotencyRow).where(IdempotencyRow.created_at < newer_than))
        try:
            # The primary key (scope, key) lets one INSERT win; the others fail and read the winner's row.
            await self._write(insert(IdempotencyRow).values(scope=scope, key=key, fingerprint=fingerprint,
                                                            task_id=None, created_at=datetime.now(newer_than.tzinfo)))
            return None
        except IntegrityError:
            pass
        async with self._read_engine.connect() as conn:
            row = (await conn.execute(select(IdempotencyRow.fingerprint, IdempotencyRow.task_id).where(*this))).first()
        if row is None:  # released meanwhile: try once more
            return await self.claim_idempotency_key(scope, key, fingerprint, newer_than=newer_than)
        return IdempotencyClaim(fingerprint=row.fingerprint, task_id=None if row.task_id is None else str(row.task_id))

    async def idempotency_key_exists(self, scope: str, key: str) -> bool:
        async with self._read_engine.connect() as conn:
            query = select(IdempotencyRow.key).where(IdempotencyRow.scope == scope, IdempotencyRow.key == key)
            return (await conn.execute(query)).first() is not None

    async def bind_idempotency_key(self, scope: str, key: str, task_id: str) -> None:
        await self._write(update(IdempotencyRow).where(IdempotencyRow.scope == scope, IdempotencyRow.key == key)
                          .values(task_id=row_id(task_id)))

    async def release_idempotency_key(self, scope: str, key: str) -> None:
        await self._write(delete(IdempotencyRow).where(IdempotencyRow.scope == scope, IdempotencyRow.key == key))
