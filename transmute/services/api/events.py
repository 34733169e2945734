"""`GET /api/tasks/{id}/events/`: a task's live progress as Server-Sent Events (see live/stream.py)."""

from __future__ import annotations

from litestar import Controller, Request, Response, get
from litestar.response import ServerSentEvent
from litestar.status_codes import HTTP_404_NOT_FOUND, HTTP_503_SERVICE_UNAVAILABLE

from transmute.services.api.docs import error_responses, file_response
from transmute.services.api.errors import RETRY_AFTER_SECONDS, ApiError, error_response
from transmute.services.api.live.state import LiveState
from transmute.services.api.live.stream import last_event_id, task_events
from transmute.services.api.tasks import TaskId, owner_of

EVENTS_DESCRIPTION = (
    "Server-Sent Events: a `progress` event whenever the task's status or progress changes, then one final "
    "`done`, `failed` or `cancelled` event, and the stream ends (a task deleted before it finished ends with "
    "`cancelled`; a stopping gateway ends its streams with none: reconnect). Each event's `data` is the task's "
    "status JSON (what `/status/` answers) and its `id` a number that grows with each change: send it back as "
    "`Last-Event-ID` to resume (the current state comes only if it is newer). A comment line every 15 s keeps "
    "the connection open. 404 (JSON) for an unknown task; 503 with `Retry-After` when this gateway process holds "
    "its limit of open streams."
)


class EventsController(Controller):
    """A task's live progress."""

    path = "/api/tasks"
    tags = ("tasks",)

    @get("/{task_id:str}/events/", summary="A task's live progress (Server-Sent Events)",
         description=EVENTS_DESCRIPTION,
         responses={**file_response("text/event-stream", "The task's events, as the description says."),
                    **error_responses(400, 404, 503)})
    async def events(self, request: Request, task_id: TaskId) -> ServerSentEvent | Response:
        live: LiveState = request.app.state.services.live
        if live.hub.full:
            return error_response(
                HTTP_503_SERVICE_UNAVAILABLE,
                f"This gateway holds its limit of {live.hub.max_streams} open event streams; retry shortly, or "
                "poll the task's status route.", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        owner = owner_of(request)
        task = await live.read(task_id, owner=owner)
        if task is None:
            raise ApiError(HTTP_404_NOT_FOUND, f"No task with id {task_id!r}.")
        seen = last_event_id(request.headers.get("last-event-id"))
        return ServerSentEvent(task_events(live, task, seen=seen, owner=owner))
