"""A Python client of the task API: `Client` (blocking) and `AsyncClient` (asyncio), over httpx.

    from transmute.client import Client

    with Client("http://127.0.0.1:8000") as client:
        task = client.create("clip.mp4", format="gif", width=320)
        status = client.wait(task.task_id)
        client.download(task.task_id, "out/")

Only `transmute.core` of the project is imported here: the client runs where neither the gateway nor the
worker is installed. See docs/client.md.
"""

from transmute.client.aio import AsyncClient
from transmute.client.errors import TransmuteError, WaitTimeout
from transmute.client.models import (
    ApiUrls,
    CreatedResponse,
    DeletedResponse,
    Pagination,
    StatusResponse,
    TaskListResponse,
    TaskMetadata,
    TaskSummary,
    WebhookDelivery,
)
from transmute.client.sync import Client

__all__ = [
    "ApiUrls",
    "AsyncClient",
    "Client",
    "CreatedResponse",
    "DeletedResponse",
    "Pagination",
    "StatusResponse",
    "TaskListResponse",
    "TaskMetadata",
    "TaskSummary",
    "TransmuteError",
    "WaitTimeout",
    "WebhookDelivery",
]
