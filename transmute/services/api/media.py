"""GET /media/results/...: a result file, where `output_url` points (embedded and distributed alike)."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.response import Stream
from litestar.status_codes import HTTP_404_NOT_FOUND

from transmute.core.errors import StorageError
from transmute.services.api.docs import error_responses, file_response
from transmute.services.api.errors import ApiError
from transmute.services.api.services import Services
from transmute.services.api.tasks import owner_of, result_gone, stream_object


@get("/media/results/{filename:str}", tags=["media"], summary="A result file",
     responses={**file_response("application/octet-stream", "The result file, shown inline."),
                **error_responses(400, 404, 410)})
async def media_result(
    request: Request,
    services: NamedDependency[Services],
    filename: Annotated[str, Parameter(description="The result's file name, as `output_url` gives it.")],
) -> Stream:
    # Result names are task_<id>_result.<ext>: the id tells which task (and so which owner) it belongs to.
    task_id = filename.removeprefix("task_").split("_result.", 1)[0]
    task = await services.store.get(task_id, owner=owner_of(request)) if task_id.isdigit() else None
    if task is None or task.result is None or task.result.filename != filename:
        raise ApiError(HTTP_404_NOT_FOUND, f"No result file named {filename!r}.")
    if task.has_expired:
        raise result_gone(task)
    try:
        return await stream_object(services, task.result.key, task.result.mime_type, task.result.filename,
                                   attachment=False)
    except StorageError as exc:
        raise ApiError(HTTP_404_NOT_FOUND, exc.message) from None
