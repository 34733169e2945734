"""The task API over an HTTP client (httpx, or Litestar's TestClient, which is one): create, status, wait.

`base` is the server's URL for a client made without a base URL; "" for one made with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.waiting import TimedOut, wait_for

DEADLINE = 60.0
"""Seconds a conversion of a test clip may take before a test gives up waiting."""
FINISHED = ("done", "failed", "cancelled")


def create_upload(client: httpx.Client, path: Path, *, base: str = "", filename: str | None = None,
                  headers: dict[str, str] | None = None, **fields: Any) -> httpx.Response:
    """POST a multipart create request with the file at `path` (and `headers`); return the answer, whatever it
    is."""
    with path.open("rb") as handle:
        return client.post(f"{base}/api/tasks/create/", files={"file": (filename or path.name, handle, "video/mp4")},
                           data={name: str(value) for name, value in fields.items()}, headers=headers)


def upload(client: httpx.Client, path: Path, *, base: str = "", filename: str | None = None, **fields: Any) -> dict:
    """POST a multipart create request; return the JSON body of its 200 answer."""
    response = create_upload(client, path, base=base, filename=filename, **fields)
    assert response.status_code == 200, response.text
    return response.json()


def queue_upload(client: httpx.Client, path: Path, *, base: str = "", **fields: Any) -> str:
    """Create a task from the file at `path`, check it is queued, and return its id."""
    created = upload(client, path, base=base, **fields)
    assert created["status"] == "queued"
    return created["task_id"]


def create_url(client: httpx.Client, url: str, *, base: str = "", **params: Any) -> httpx.Response:
    """POST a JSON create request for the source `url`; return the answer, whatever it is."""
    return client.post(f"{base}/api/tasks/create/", json={"url": url, **params})


def status(client: httpx.Client, task_id: str, *, base: str = "") -> dict[str, Any]:
    """The task's status body (fails the test unless the answer is a 200)."""
    response = client.get(f"{base}/api/tasks/{task_id}/status/")
    assert response.status_code == 200, response.text
    return response.json()


def wait_all_finished(client: httpx.Client, task_ids: list[str], timeout: float = DEADLINE, *, base: str = "",
                      interval: float = 0.3) -> dict[str, dict[str, Any]]:
    """Poll until every task is done or failed (riding out a server that is briefly away); their last statuses."""
    last: dict[str, dict[str, Any]] = {}

    def all_finished() -> bool:
        for task_id in task_ids:
            if last.get(task_id, {}).get("status") not in FINISHED:
                try:
                    last[task_id] = status(client, task_id, base=base)
                except httpx.HTTPError:
                    return False
        return all(last[task_id]["status"] in FINISHED for task_id in task_ids)

    try:
        wait_for(all_finished, timeout, "the tasks to finish", interval=interval)
    except TimedOut:
        stuck = {task_id: last.get(task_id) for task_id in task_ids if last.get(task_id, {}).get("status")
                 not in FINISHED}
        raise TimedOut(f"tasks not finished after {timeout:g} s: {stuck}") from None
    return last


def wait_finished(client: httpx.Client, task_id: str, *, deadline: float = DEADLINE, base: str = "",
                  interval: float = 0.05) -> dict[str, Any]:
    """Poll the task's status until it is done or failed; return the last status body."""
    return wait_all_finished(client, [task_id], deadline, base=base, interval=interval)[task_id]
