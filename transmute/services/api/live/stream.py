"""The Server-Sent Events of one `/events/` stream: the task's state whenever it changes, then its end.

Each event's `data` is the task's status JSON (what `/status/` answers) and its `id` the task's state version,
which a client sends back as `Last-Event-ID` when it reconnects: it gets the current state only if that is
newer. A finished task's stream sends its final event (`done`, `failed` or `cancelled`) at once and ends; so does
the stream of a task deleted before it finished, with a `cancelled` event (a delete cancels it first). Only a
stopping gateway ends a stream without a final event: its client reconnects to another replica.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from litestar.response import ServerSentEventMessage

from transmute.core.models import Task, TaskStatus, utcnow
from transmute.services.api.live.state import LiveState
from transmute.services.api.live.watch import Signal, state_version
from transmute.services.api.schemas import status_of


class Heartbeat(ServerSentEventMessage):
    """A comment line alone, with no blank line after it: it keeps proxies from closing a quiet stream, and no
    client sees an event (a blank line would make some, like httpx-sse, report an empty `message` event)."""

    def encode(self) -> bytes:
        return b": heartbeat\r\n"


HEARTBEAT = Heartbeat(data=None)


def event_of(task: Task) -> ServerSentEventMessage:
    """A task's state as one event: `progress` while it runs, else its final status."""
    kind = task.status.value if task.status.is_finished else "progress"
    data = msgspec.json.encode(status_of(task)).decode()
    return ServerSentEventMessage(data=data, event=kind, id=state_version(task))


def deleted(task: Task) -> Task:
    """The final state of a task deleted while the stream knew it as `task`, read from no database (the record is
    gone): cancelled, as the delete's cancel left it in the store (status and `completed_at`, `updated_at` now;
    its progress, attempt and run as they were), and expired now, since nothing of it is kept any more."""
    if task.status.is_finished:
        return task
    now = utcnow()
    return msgspec.structs.replace(task, status=TaskStatus.CANCELLED, completed_at=now, updated_at=now,
                                   expires_at=now)


def last_event_id(header: str | None) -> int:
    """The version a reconnecting client has seen (-1: none, or an id that is no number of ours)."""
    try:
        return int((header or "").strip())
    except ValueError:
        return -1


async def task_events(live: LiveState, first: Task, *, seen: int, owner: str | None) -> AsyncIterator[
        ServerSentEventMessage]:
    """The stream of one task, from `first` (read by the route: it exists) on."""
    with live.hub.watch(first.id) as watch:
        watch.sent_version = seen
        watch.offer(first)
        # Read again now the watch is on: a change applied between the route's read and the watch is not lost.
        again = await live.read(first.id, owner=owner)
        if again is None:  # deleted meanwhile
            yield event_of(deleted(first))
            return
        watch.offer(again)
        if again.status.is_finished or first.status.is_finished:
            final = again if again.status.is_finished else first
            yield event_of(final)
            return
        # The newest state the stream knows, sent or not (a resumed stream skips what its client has seen).
        known = max(first, again, key=state_version)
        while True:
            news = await watch.next(live.config.events_heartbeat)
            if news is Signal.STOPPING:
                return
            if news is Signal.DELETED:
                yield event_of(deleted(known))
                return
            if news is Signal.QUIET:
                yield HEARTBEAT
                continue
            known = news
            yield event_of(news)
            if news.status.is_finished:
                return
