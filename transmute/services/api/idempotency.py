"""Idempotent creates: the `Idempotency-Key` request header (IETF draft-ietf-httpapi-idempotency-key-header).

The same key with the same request within KEEP_FOR answers the task the first create made (no second task, no
second upload kept); the same key with another request is a 422; a key whose first create is still being
handled is a 409. Keys are scoped per API key (per owner), and kept in the task store.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import msgspec
from litestar import Request
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY

from transmute.core.models import Task, utcnow
from transmute.services.api.errors import ApiError
from transmute.services.api.sources import NewTask
from transmute.store import TaskStore

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
"""How long a key answers with its task; after it the key is free again."""
MAX_KEY_CHARS = 255


def idempotency_key(request: Request) -> str | None:
    """The request's key, checked (a 400 when malformed): 1 to 255 visible ASCII characters, sent bare or as the
    draft's quoted string (`"8e03978e-40d5"`)."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_KEY_CHARS or not all("!" <= ch <= "~" for ch in key):
        raise ApiError(HTTP_400_BAD_REQUEST, f"The {HEADER} header must be 1 to {MAX_KEY_CHARS} visible ASCII "
                       "characters (letters, digits, punctuation; no spaces), like a UUID.", details={"field": HEADER})
    return key


def fingerprint(new: NewTask) -> str:
    """The request's fingerprint: a hash of its parameters, its source (an upload by its bytes' hash) and its webhook
    (another receiver or other events is another request)."""
    request = {"params": new.params.to_dict(), "source_type": new.source_type, "source_url": new.source_url,
               "source_sha256": new.source_sha256, "original_filename": new.original_filename,
               "webhook_url": new.webhook_url, "webhook_events": sorted(new.webhook_events)}
    return hashlib.sha256(msgspec.json.encode(request, order="sorted")).hexdigest()


async def earlier_task(store: TaskStore, scope: str, key: str, print_: str) -> Task | None:
    """The task an earlier create with this key made (the same request: a replay), or None when this create has
    claimed the key (bind it to its task, or release it if the create fails). 422 for another request, 409 while
    the earlier create is still being handled."""
    for _ in range(3):
        claim = await store.claim_idempotency_key(scope, key, print_, newer_than=utcnow() - KEEP_FOR)
        if claim is None:
            return None
        if claim.fingerprint != print_:
            raise ApiError(HTTP_422_UNPROCESSABLE_ENTITY, f"The {HEADER} {key!r} was used for another request "
                           "(other parameters or another source); send a new key for a new request.",
                           details={"field": HEADER})
        if claim.task_id is None:
            raise ApiError(HTTP_409_CONFLICT, f"A request with the {HEADER} {key!r} is still being handled; wait "
                           "for its answer, or send this one again in a moment.", details={"field": HEADER},
                           headers={"Retry-After": "1"})
        task = await store.get(claim.task_id)
        if task is not None:
            return task
        await store.release_idempotency_key(scope, key)  # its task was deleted: the key is free
    raise ApiError(HTTP_409_CONFLICT, f"The {HEADER} {key!r} is being used by other requests right now; try again.",
                   details={"field": HEADER})
