"""The task routes of the spec (create, status, result, download, list, batch download) and the lifecycle's
(cancel, delete, retry)."""

from __future__ import annotations

import contextlib
import time
from typing import Annotated, Literal
from urllib.parse import quote

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.response import Stream
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_410_GONE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
)

from transmute.core.errors import InvalidParameter, StorageError
from transmute.core.models import (
    ControlMessage,
    Task,
    TaskEvent,
    TaskStatus,
    attempts_prefix,
    next_seq,
    utcnow,
)
from transmute.core.run_mode import RunMode
from transmute.core.wire import (
    CreatedResponse,
    DeletedResponse,
    FailedResultResponse,
    Pagination,
    ResultInfo,
    ResultResponse,
    StatusResponse,
    TaskListResponse,
)
from transmute.services.api.admission import check_free_disk, check_queue_room
from transmute.services.api.archive import BatchArchive
from transmute.services.api.docs import BatchPostOperation, CreateOperation, error_responses, file_response
from transmute.services.api.errors import ApiError
from transmute.services.api.idempotency import earlier_task, fingerprint, idempotency_key
from transmute.services.api.metrics import count_created
from transmute.services.api.schemas import api_urls_of, format_metadata_of, iso, status_of, summary_of, warnings_of
from transmute.services.api.services import Services
from transmute.services.api.sources import NewTask, read_json_body, read_new_task
from transmute.services.api.task_files import remove_task_files
from transmute.store import ORDERS

MAX_ID_CHARS = 64
TaskId = Annotated[str, Parameter(description="The task's id, as `create` returned it.", max_length=MAX_ID_CHARS)]
CREATED_MESSAGE = "Задача создана и поставлена в очередь на выполнение"
BATCH_DESCRIPTION = (
    "The files of the done tasks among those asked for, in one ZIP streamed as it is built. Unknown and "
    "unfinished tasks, and done ones whose result expired, are counted in X-Total-Tasks and skipped; 404 when "
    "none has a file."
)
ZIP_DESCRIPTION = (
    "A ZIP with one file per done task; headers X-Total-Tasks (ids asked for), X-Successful-Tasks and "
    "X-Files-Count (files in the archive)."
)


def owner_of(request: Request) -> str | None:
    """The API key's owner id when keys are on (each key sees only its own tasks), else None."""
    return request.scope.get("user")


def content_disposition(filename: str, *, attachment: bool = True) -> str:
    """A Content-Disposition safe for any file name (RFC 6266: an ASCII fallback and `filename*`)."""
    kind = "attachment" if attachment else "inline"
    # No folders and no control characters in either form, whatever the name holds.
    filename = "".join("_" if ch in "/\\" or not ch.isprintable() else ch for ch in filename) or "download"
    fallback = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\;' else "_" for ch in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def _task_or_404(services: NamedDependency[Services], request: Request, task_id: str) -> Task:
    task = await services.store.get(task_id, owner=owner_of(request))
    if task is None:
        raise ApiError(HTTP_404_NOT_FOUND, f"No task with id {task_id!r}.")
    return task


def result_gone(task: Task) -> ApiError:
    """410 for a done task whose result expired."""
    return ApiError(HTTP_410_GONE, f"Task {task.id}'s result expired at {iso(task.expires_at)} and was removed; "
                    "create a new task to convert the video again.", task_id=task.id, expires_at=iso(task.expires_at))


def _not_ready(task: Task) -> ApiError:
    if task.status is TaskStatus.FAILED:
        message = f"Task {task.id} failed, so it has no result: {task.error_message}"
    elif task.status is TaskStatus.CANCELLED:
        message = f"Task {task.id} was cancelled, so it has no result; retry it to convert it after all."
    else:
        message = f"Task {task.id} is {task.status.value} ({task.progress}%); poll its status until it is done."
    return ApiError(HTTP_409_CONFLICT, message, task_id=task.id, status=task.status.value, progress=task.progress)


class TasksController(Controller):
    """Conversion tasks: create one, follow it, fetch its result."""

    path = "/api/tasks"
    tags = ("tasks",)

    @post("/create/", status_code=HTTP_200_OK, operation_class=CreateOperation,
          summary="Create a conversion task (multipart upload or JSON with a URL)",
          responses=error_responses(400, 409, 413, 415, 422, 503, 507))
    async def create(self, request: Request, services: NamedDependency[Services]) -> Response[CreatedResponse]:
        settings = services.settings
        # Refused before the body is read: a full disk or a full queue costs the client no upload.
        if services.mode is RunMode.EMBEDDED:
            await check_free_disk(settings.storage, settings.limits)
        key = idempotency_key(request)
        scope = owner_of(request) or ""
        queue_full = await _queue_refusal(services, scope, key)
        new = await read_new_task(request, services.storage, limits=settings.limits,
                                  allow_private=settings.fetch.allow_private_urls, webhooks=settings.webhooks)
        if key is not None:
            earlier = await _earlier_task(services, scope, key, new)
            if earlier is not None:
                return _created(earlier, replayed=True)
        if queue_full is not None:  # not a replay after all (the key had expired or was released): no new task
            await _drop_claim(services, scope, key, new)
            raise queue_full
        task = await _record_task(services, new, owner_of(request), scope, key)
        count_created(task)
        services.queue_depth.added()
        await services.publish(task, source_media=new.source_media)
        return _created(task)

    @get("/{task_id:str}/status/", summary="A task's status and progress", responses=error_responses(400, 404))
    async def status(self, request: Request, task_id: TaskId) -> StatusResponse:
        # The most polled route: the services straight from the app's state (no dependency injection), the state
        # from Redis when it holds it (running tasks, with TRANSMUTE_REDIS_URL), else from the store.
        task = await request.app.state.services.live.read(task_id, owner=owner_of(request))
        if task is None:
            raise ApiError(HTTP_404_NOT_FOUND, f"No task with id {task_id!r}.")
        return status_of(task)

    @get("/{task_id:str}/result/", summary="A finished task's result (done or failed)",
         description="200 with the result of a done task, or 200 with `success: false` and the error message of "
         "a failed one; 409 while the task is queued or running; 410 once the result expired (`expires_at`).",
         responses=error_responses(400, 404, 409, 410))
    async def result(
        self, request: Request, services: NamedDependency[Services], task_id: TaskId
    ) -> ResultResponse | FailedResultResponse:
        task = await _task_or_404(services, request, task_id)
        if task.status is TaskStatus.FAILED:
            return FailedResultResponse(task_id=task.id, status="failed", error_message=task.error_message,
                                        completed_at=iso(task.completed_at), expires_at=iso(task.expires_at))
        if task.status is not TaskStatus.DONE or task.result is None:
            raise _not_ready(task)
        if task.has_expired:
            raise result_gone(task)
        return ResultResponse(
            task_id=task.id,
            status="done",
            result=ResultInfo(
                output_url=f"/media/{task.result.key}",
                download_url=api_urls_of(task.id).download,
                filename=task.result.filename,
                file_size=task.result.size,
                format=task.target_format,
                original_filename=task.original_filename,
                conversion_params=task.params,
                format_metadata=format_metadata_of(task),
            ),
            completed_at=iso(task.completed_at),
            expires_at=iso(task.expires_at),
            duration_seconds=task.duration_seconds,
            warnings=warnings_of(task),
        )

    @get("/{task_id:str}/download/", summary="Download a done task's file",
         responses={**file_response("application/octet-stream", "The result file, with Content-Type (its MIME "
                                    "type, image/gif for a GIF), Content-Disposition: attachment and Content-Length."),
                    **error_responses(400, 404, 409, 410, 503)})
    async def download(self, request: Request, services: NamedDependency[Services], task_id: TaskId) -> Stream:
        task = await _task_or_404(services, request, task_id)
        if task.status is not TaskStatus.DONE or task.result is None:
            raise _not_ready(task)
        if task.has_expired:
            raise result_gone(task)
        return await stream_object(services, task.result.key, task.result.mime_type, task.result.filename)

    @get("/", summary="List tasks, filtered, ordered and paginated", responses=error_responses(400))
    async def list_tasks(
        self,
        request: Request,
        services: NamedDependency[Services],
        page: Annotated[int, Parameter(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
        per_page: Annotated[int, Parameter(ge=1, description="Tasks per page, at most 100.")] = 20,
        status: Annotated[
            Literal["queued", "running", "done", "failed", "cancelled"] | None,
            Parameter(description="Only tasks in this status."),
        ] = None,
        format: Annotated[str | None, Parameter(max_length=32, description="Only tasks to this format.")] = None,
        order: Annotated[
            Literal["created_at", "-created_at", "updated_at", "-updated_at", "status", "-status"],
            Parameter(description="Sort order; a leading '-' sorts descending."),
        ] = "-created_at",
    ) -> TaskListResponse:
        assert order in ORDERS
        per_page = min(per_page, 100)
        found = await services.store.list(
            page=page,
            per_page=per_page,
            status=status,
            target_format=format.strip().lower() if format else None,
            order=order,
            owner=owner_of(request),
        )
        return TaskListResponse(
            tasks=[summary_of(task) for task in found.tasks],
            pagination=Pagination(
                page=page,
                per_page=per_page,
                total=found.total,
                pages=found.pages,
                has_next=page < found.pages,
                has_previous=page > 1,
            ),
        )

    @post("/{task_id:str}/cancel/", status_code=HTTP_200_OK, summary="Cancel a queued or running task",
          description="A queued task is `cancelled` at once and never starts; a running one is stopped within "
          "about a second on the worker that runs it (its ffmpeg killed, its scratch files removed). 200 with the "
          "task's status (also when it was cancelled already); 409 when it is done or failed.",
          responses=error_responses(400, 404, 409))
    async def cancel(self, request: Request, services: NamedDependency[Services], task_id: TaskId) -> StatusResponse:
        task = await _task_or_404(services, request, task_id)
        if task.status is not TaskStatus.CANCELLED:
            task = await _cancel(services, task)
        return status_of(task)

    @delete("/{task_id:str}/", status_code=HTTP_200_OK, summary="Delete a task, its source and its result",
            description="Cancels the task if it is queued or running, then removes its uploaded source, its result "
            "file and its record: afterwards every route of the task answers 404.",
            responses=error_responses(400, 404, 503))
    async def delete_task(
        self, request: Request, services: NamedDependency[Services], task_id: TaskId
    ) -> DeletedResponse:
        task = await _task_or_404(services, request, task_id)
        if not task.status.is_finished:
            with contextlib.suppress(ApiError):  # finished meanwhile: nothing to stop
                await _cancel(services, task)
            # The run stops within a second; once its attempt marker is gone it writes nothing more.
            await anyio.to_thread.run_sync(_wait_for_run_to_end, services, task.id)
        await anyio.to_thread.run_sync(remove_task_files, services.storage, task)
        await services.store.delete(task.id)
        await services.live.forget(task.id)
        return DeletedResponse(task_id=task.id, message=f"Task {task.id}, its source and its result were deleted.")

    @post("/{task_id:str}/retry/", status_code=HTTP_200_OK, summary="Queue a failed or cancelled task again",
          description="The same source and parameters, queued as a new attempt (`attempt` in its status grows by "
          "one). 409 when the task is queued, running or done, or when its uploaded source is no longer stored; "
          "410 once the task expired (`expires_at`: its uploaded source is removed).",
          responses=error_responses(400, 404, 409, 410))
    async def retry(self, request: Request, services: NamedDependency[Services], task_id: TaskId) -> StatusResponse:
        task = await _task_or_404(services, request, task_id)
        if not task.status.may_retry:
            raise _conflict(task, f"Task {task.id} is {task.status.value}; only a failed or cancelled task can be "
                            "retried.")
        if task.has_expired:
            what = "its uploaded source was removed" if task.source_key else "its record is being removed"
            raise ApiError(HTTP_410_GONE, f"Task {task.id} expired at {iso(task.expires_at)}: {what}, so it cannot "
                           "be retried; create a new task.", task_id=task.id, expires_at=iso(task.expires_at))
        if task.source_key and await anyio.to_thread.run_sync(services.storage.size, task.source_key) is None:
            raise _conflict(task, f"Task {task.id}'s uploaded source is no longer stored; create a new task.")
        retried = await services.store.retry(task.id, owner=owner_of(request))
        if retried is None:  # another request retried (or deleted) it first
            raise _conflict(await _task_or_404(services, request, task_id),
                            f"Task {task.id} is no longer failed or cancelled; see its status.")
        await services.live.announce(retried)
        await services.publish(retried)
        return status_of(retried)

    @get("/batch-download/", summary="Download many done tasks' files as one ZIP (ids in the query)",
         description=BATCH_DESCRIPTION, responses={**file_response("application/zip", ZIP_DESCRIPTION),
                                                   **error_responses(400, 404)})
    async def batch_download(
        self,
        request: Request,
        services: NamedDependency[Services],
        task_ids: Annotated[
            str | None, Parameter(description="Comma-separated task ids, e.g. `1,2,3` (at most 50).", max_length=4096)
        ] = None,
    ) -> Stream:
        return await _batch_zip(request, services, task_ids)

    @post("/batch-download/", status_code=HTTP_200_OK, operation_class=BatchPostOperation,
          summary="Download many done tasks' files as one ZIP (ids in a JSON body)",
          description=BATCH_DESCRIPTION, responses={**file_response("application/zip", ZIP_DESCRIPTION),
                                                    **error_responses(400, 404, 413, 415)})
    async def batch_download_post(
        self,
        request: Request,
        services: NamedDependency[Services],
        task_ids: Annotated[
            str | None, Parameter(description="Instead of the body: comma-separated task ids.", max_length=4096)
        ] = None,
    ) -> Stream:
        return await _batch_zip(request, services, task_ids)


async def _queue_refusal(services: Services, scope: str, key: str | None) -> ApiError | None:
    """The 503 of a full queue (TRANSMUTE_MAX_QUEUED): raised at once, before the body is read, unless the create
    carries an Idempotency-Key already used; then it is returned, for the create to raise only if the request is
    not a replay (a replay answers its task whatever the queue holds)."""
    try:
        await check_queue_room(services.queue_depth, services.settings.limits)
    except ApiError as refusal:
        if key is None or not await services.store.idempotency_key_exists(scope, key):
            raise
        return refusal
    return None


async def _drop_claim(services: Services, scope: str, key: str | None, new: NewTask) -> None:
    """Undo what a create that will not make its task holds: its claim on the key, and its stored upload."""
    if key is not None:
        with contextlib.suppress(Exception):
            await services.store.release_idempotency_key(scope, key)
    await _drop_upload(services, new.source_key)


async def _earlier_task(services: Services, scope: str, key: str, new: NewTask) -> Task | None:
    """The task an earlier create with this Idempotency-Key made, or None when this create has claimed the key
    (see idempotency.earlier_task). The upload just stored is dropped unless this create goes on."""
    try:
        earlier = await earlier_task(services.store, scope, key, fingerprint(new))
    except Exception:
        await _drop_upload(services, new.source_key)
        raise
    if earlier is not None:  # the same request again: the upload sent again is not kept
        await _drop_upload(services, new.source_key)
    return earlier


async def _record_task(services: Services, new: NewTask, owner: str | None, scope: str, key: str | None) -> Task:
    """Record the new task (and bind the create's Idempotency-Key to it); when that fails, nothing of the request
    stays: neither its upload nor its claim on the key."""
    try:
        task = await services.store.create(
            target_format=new.params.format,
            source_type=new.source_type,
            params=new.params.to_dict(),
            original_filename=new.original_filename,
            file_size=new.file_size,
            source_key=new.source_key,
            source_url=new.source_url,
            owner=owner,
            webhook_url=new.webhook_url,
            webhook_events=new.webhook_events,
        )
    except Exception:
        await _drop_claim(services, scope, key, new)  # no task will ever point at the upload: do not leave it
        raise
    if key is not None:
        await services.store.bind_idempotency_key(scope, key, task.id)
    return task


def _created(task: Task, *, replayed: bool = False) -> Response[CreatedResponse]:
    """The create's answer; a replay (same Idempotency-Key, same request) answers the first create's JSON again,
    marked by `Idempotent-Replayed: true`."""
    body = CreatedResponse(task_id=task.id, status=TaskStatus.QUEUED.value, message=CREATED_MESSAGE,
                           api_urls=api_urls_of(task.id))
    return Response(body, status_code=HTTP_200_OK, headers={"Idempotent-Replayed": "true"} if replayed else None)


async def _drop_upload(services: Services, source_key: str | None) -> None:
    if source_key:
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(services.storage.delete, source_key)


def _conflict(task: Task, message: str) -> ApiError:
    return ApiError(HTTP_409_CONFLICT, message, task_id=task.id, status=task.status.value, progress=task.progress)


async def _cancel(services: Services, task: Task) -> Task:
    """Cancel a queued or running task: the store first (through the same event the projector applies, so a
    worker's later events change nothing), then every worker is told (the one running it stops it; any other
    skips its convert message). 409 when it finished first."""
    event = TaskEvent(task_id=task.id, seq=next_seq(), kind="cancelled", at=utcnow(), attempt=task.attempt)
    applied = await services.store.apply_event(event)
    current = await services.store.get(task.id) or task
    if not applied and current.status is not TaskStatus.CANCELLED:
        raise _conflict(current, f"Task {task.id} is {current.status.value} already; only a queued or running "
                        "task can be cancelled.")
    if applied:
        await services.live.announce(current)
    await services.broadcast(ControlMessage(action="cancel", task_id=task.id, attempt=task.attempt))
    if applied:
        await services.notify_webhook(current, "cancelled")
    return current


RUN_END_SECONDS = 5.0
"""How long a delete waits for a cancelled run to end before removing the task's files anyway."""


def _wait_for_run_to_end(services: Services, task_id: str) -> None:
    deadline = time.monotonic() + RUN_END_SECONDS
    while services.storage.list_keys(attempts_prefix(task_id)) and time.monotonic() < deadline:
        time.sleep(0.1)


async def _batch_zip(request: Request, services: Services, task_ids: str | None) -> Stream:
    limits = services.settings.limits
    ids = await _batch_ids(request, task_ids, limits.max_batch, limits.max_json_bytes)
    archive = await BatchArchive.prepare(services, ids, owner=owner_of(request))
    if not archive.entries:
        raise ApiError(
            HTTP_404_NOT_FOUND,
            f"None of the {len(ids)} requested tasks has a file to download: {archive.why_skipped()}.",
            total_tasks=len(ids),
            missing_tasks=archive.missing,
            unfinished_tasks=list(archive.unfinished),
        )
    return Stream(
        archive.stream(),
        media_type="application/zip",
        headers={
            "Content-Disposition": content_disposition(archive.filename),
            "X-Total-Tasks": str(len(ids)),
            "X-Successful-Tasks": str(len(archive.entries)),
            "X-Files-Count": str(len(archive.entries)),
        },
    )


BATCH_EXAMPLE = '{"task_ids": [1, 2, 3]}'


async def _batch_ids(request: Request, query_ids: str | None, limit: int, max_json_bytes: int) -> list[str]:
    """The requested ids, from `?task_ids=1,2` or a JSON body `{"task_ids": [1, "2"]}`, checked and in
    their canonical form (`01` is task 1), each once, in the order asked."""
    raw = await _posted_ids(request, query_ids, max_json_bytes) if request.method == "POST" else None
    if raw is None:
        if query_ids is None:
            raise InvalidParameter("task_ids", "'task_ids' is required, like ?task_ids=1,2,3.")
        raw = query_ids.split(",")
    # Counted before anything looks at an id: a long list costs nothing but this 400.
    if len(raw) > limit:
        raise InvalidParameter("task_ids", f"At most {limit} tasks can be downloaded at once; got {len(raw)}.")
    ids = list(dict.fromkeys(task_id for value in raw if (task_id := _canonical_id(value)) is not None))
    if not ids:
        raise InvalidParameter("task_ids", "'task_ids' lists no task id.")
    return ids


async def _posted_ids(request: Request, query_ids: str | None, max_json_bytes: int) -> list | None:
    """The `task_ids` list of a POST's JSON body; None when the body has none and the query gives them."""
    content_type, _ = request.content_type
    if content_type != "application/json":
        if query_ids is not None and not _has_body(request):
            return None
        raise ApiError(HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"Send the task ids as application/json, like "
                       f"{BATCH_EXAMPLE}; got Content-Type {content_type or 'none'!r}.")
    data = await read_json_body(request, max_json_bytes, example=BATCH_EXAMPLE)
    if not isinstance(data, dict) or "task_ids" not in data:
        if query_ids is not None:
            return None
        raise InvalidParameter("task_ids", f"Send a JSON object like {BATCH_EXAMPLE}.")
    if not isinstance(data["task_ids"], list):
        raise InvalidParameter("task_ids", "'task_ids' must be a list of task ids, like [1, 2, 3].")
    return data["task_ids"]


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in request.headers


def _canonical_id(value: object) -> str | None:
    """A task id as the store writes it (`01` and 1 are task 1); None for a blank; 400 for what is no id."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = value.strip() if isinstance(value, str) else None
    if text == "":
        return None
    if text is not None and len(text) <= MAX_ID_CHARS and text.isascii() and text.isdigit():
        return str(int(text))
    shown = msgspec.json.encode(text if text is not None else value).decode()  # as the client wrote it
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise InvalidParameter("task_ids", f"{shown} is not a task id: task ids are whole numbers, like 1 or 42.")


async def stream_object(
    services: NamedDependency[Services], key: str, mime_type: str, filename: str, *, attachment: bool = True
) -> Stream:
    """A stored object as a download: type, file name and length, in constant memory."""
    size = await anyio.to_thread.run_sync(services.storage.size, key)
    if size is None:
        raise StorageError("The result file is missing from storage; convert the video again.")
    return Stream(
        services.storage.iter_chunks(key),
        media_type=mime_type,
        headers={"Content-Disposition": content_disposition(filename, attachment=attachment),
                 "Content-Length": str(size)},
    )

