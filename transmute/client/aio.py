"""`AsyncClient`: the task API from asyncio code (the same calls as `Client`, awaited)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import httpx_sse

import transmute.client.protocol as protocol
from transmute.client.follow import Follow, Progress
from transmute.client.models import CreatedResponse, DeletedResponse, StatusResponse, TaskListResponse
from transmute.client.protocol import TASKS
from transmute.client.sync import Destination
from transmute.client.uploads import Source, UploadProgress, create_request


class AsyncClient(protocol.BaseClient[httpx.AsyncClient]):
    """A transmute server's task API for asyncio: every method of `Client`, as a coroutine.

    Uploads and downloads read and write local files in small blocking steps (64 KiB), as httpx does.
    `http_client`: an httpx.AsyncClient of yours; its base URL and headers are set here, and closing it is yours.
    """

    _http_class = httpx.AsyncClient

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    # ------------------------------------------------------------------------------------------ the API

    async def create(self, source: Source, *, filename: str | None = None,
                     upload_progress: UploadProgress | None = None, **options: Any) -> CreatedResponse:
        """Create a task from a path, an open binary file or an http(s) URL; options as keywords (`width=320`)."""
        with create_request(source, options, filename=filename, progress=upload_progress) as request:
            return protocol.decode(await self._send(**request), CreatedResponse)

    async def status(self, task_id: str) -> StatusResponse:
        return protocol.decode(await self._send("GET", f"{TASKS}/{task_id}/status/"), StatusResponse)

    async def wait(self, task_id: str, *, timeout: float | None = None,
                   on_progress: Progress | None = None) -> StatusResponse:
        """Until the task is done, failed or cancelled: its last status; WaitTimeout after `timeout` s.
        Follows the task's event stream, or polls its status where the server has none."""
        follow = Follow(task_id, timeout, on_progress, self.poll_interval)
        while True:
            if follow.use_events:
                status = await self._next_from_events(follow)
            else:
                status = follow.seen(await self.status(task_id))
            if status is not None and status.is_finished:
                return status
            follow.check()
            if not follow.use_events:
                await asyncio.sleep(follow.pause())

    async def download(self, task_id: str, destination: Destination = None) -> Path | None:
        """Write a done task's file into a folder (the current one by default), to a path, or to an open file;
        return the path written (None for a file object)."""
        return await self._save(await self._stream("GET", f"{TASKS}/{task_id}/download/"), destination,
                                f"task_{task_id}")

    async def batch_download(self, task_ids: list[str], destination: Destination = None) -> Path | None:
        """Write the files of several done tasks as one ZIP (unfinished and unknown ones are skipped)."""
        stream = await self._stream("POST", f"{TASKS}/batch-download/", json=protocol.batch_body(task_ids))
        return await self._save(stream, destination, "transmute_results.zip")

    async def list(self, *, page: int = 1, per_page: int = 20, status: str | None = None,
                   format: str | None = None, order: str | None = None) -> TaskListResponse:
        """One page of tasks, filtered by status and format, ordered by `order` (`-created_at`...)."""
        params = protocol.list_params(page, per_page, status, format, order)
        return protocol.decode(await self._send("GET", f"{TASKS}/", params=params), TaskListResponse)

    async def cancel(self, task_id: str) -> StatusResponse:
        return protocol.decode(await self._send("POST", f"{TASKS}/{task_id}/cancel/"), StatusResponse)

    async def delete(self, task_id: str) -> DeletedResponse:
        return protocol.decode(await self._send("DELETE", f"{TASKS}/{task_id}/"), DeletedResponse)

    async def retry(self, task_id: str) -> StatusResponse:
        return protocol.decode(await self._send("POST", f"{TASKS}/{task_id}/retry/"), StatusResponse)

    # ------------------------------------------------------------------------------------------ transport

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request (again after a 503's Retry-After); the answer, read whole."""
        response = await self._stream(method, url, **kwargs)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _stream(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request (again after a 503's Retry-After); the answer with its body still to read."""
        retries = 0
        while True:
            try:
                response = await self._http.send(self._http.build_request(method, url, **kwargs), stream=True)
            except httpx.TransportError as error:
                raise protocol.unreachable(error, self.base_url) from error
            delay = self.retry_policy.delay(response, retries)
            if delay is None:
                return response
            await response.aclose()
            retries += 1
            await asyncio.sleep(delay)

    async def _save(self, response: httpx.Response, destination: Destination, fallback: str) -> Path | None:
        async with contextlib.aclosing(response):
            if not response.is_success:
                await response.aread()
                raise protocol.error_of(response)
            if destination is not None and hasattr(destination, "write"):
                async for chunk in response.aiter_bytes():
                    destination.write(chunk)
                return None
            path = protocol.target_path(destination, response, fallback)  # type: ignore[arg-type]
            with protocol.written(path) as file:
                async for chunk in response.aiter_bytes():
                    file.write(chunk)
            return path

    async def _next_from_events(self, follow: Follow) -> StatusResponse | None:
        """Statuses from the task's event stream until the final one; None when the stream is not offered, broke,
        or ended early (the caller tries again or polls)."""
        try:
            async with httpx_sse.aconnect_sse(self._http, "GET", follow.events_url, headers=follow.stream_headers(),
                                              timeout=follow.stream_timeout()) as source:
                if source.response.status_code != 200:
                    await source.response.aread()
                    follow.refused(source.response)
                    return None
                async for sse in source.aiter_sse():
                    status = follow.event(sse.event, sse.data, sse.id)
                    if status is not None and status.is_finished:
                        return status
        except (httpx.TransportError, httpx_sse.SSEError):
            pass
        follow.broke()
        return None
