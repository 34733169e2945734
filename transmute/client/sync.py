"""`Client`: the task API from blocking code."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import httpx_sse

import transmute.client.protocol as protocol
from transmute.client.follow import Follow, Progress
from transmute.client.models import CreatedResponse, DeletedResponse, StatusResponse, TaskListResponse
from transmute.client.protocol import TASKS
from transmute.client.uploads import Source, UploadProgress, create_request

T = TypeVar("T")
Destination = str | os.PathLike | IO[bytes] | None
"""Where a download goes: a folder (the file keeps the server's name), a file path, or an open binary file."""


class Client(protocol.BaseClient[httpx.Client]):
    """A transmute server's task API: create, follow and fetch conversion tasks.

    `api_key` is sent as `Authorization: Bearer`. A 503 (or 429) is sent again after its Retry-After (at most
    `max_retries` times, waiting at most `max_retry_wait` s each); every error answer is a TransmuteError.
    `http_client`: an httpx.Client of yours (proxies, certificates...); its base URL and headers are set here,
    and closing it is yours.
    """

    _http_class = httpx.Client

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    # ------------------------------------------------------------------------------------------ the API

    def create(self, source: Source, *, filename: str | None = None, upload_progress: UploadProgress | None = None,
               **options: Any) -> CreatedResponse:
        """Create a task from a path, an open binary file or an http(s) URL; options as keywords (`width=320`)."""
        with create_request(source, options, filename=filename, progress=upload_progress) as request:
            return protocol.decode(self._send(**request), CreatedResponse)

    def status(self, task_id: str) -> StatusResponse:
        return protocol.decode(self._send("GET", f"{TASKS}/{task_id}/status/"), StatusResponse)

    def wait(self, task_id: str, *, timeout: float | None = None,
             on_progress: Progress | None = None) -> StatusResponse:
        """Block until the task is done, failed or cancelled, and return its last status; WaitTimeout after
        `timeout` s. Follows the task's event stream, or polls its status where the server has none."""
        follow = Follow(task_id, timeout, on_progress, self.poll_interval)
        while True:
            status = self._next_from_events(follow) if follow.use_events else follow.seen(self.status(task_id))
            if status is not None and status.is_finished:
                return status
            follow.check()
            if not follow.use_events:
                time.sleep(follow.pause())

    def download(self, task_id: str, destination: Destination = None) -> Path | None:
        """Write a done task's file into a folder (the current one by default), to a path, or to an open file;
        return the path written (None for a file object)."""
        return self._save(self._stream("GET", f"{TASKS}/{task_id}/download/"), destination, f"task_{task_id}")

    def batch_download(self, task_ids: list[str], destination: Destination = None) -> Path | None:
        """Write the files of several done tasks as one ZIP (unfinished and unknown ones are skipped)."""
        stream = self._stream("POST", f"{TASKS}/batch-download/", json=protocol.batch_body(task_ids))
        return self._save(stream, destination, "transmute_results.zip")

    def list(self, *, page: int = 1, per_page: int = 20, status: str | None = None, format: str | None = None,
             order: str | None = None) -> TaskListResponse:
        """One page of tasks, filtered by status and format, ordered by `order` (`-created_at`...)."""
        params = protocol.list_params(page, per_page, status, format, order)
        return protocol.decode(self._send("GET", f"{TASKS}/", params=params), TaskListResponse)

    def cancel(self, task_id: str) -> StatusResponse:
        return protocol.decode(self._send("POST", f"{TASKS}/{task_id}/cancel/"), StatusResponse)

    def delete(self, task_id: str) -> DeletedResponse:
        return protocol.decode(self._send("DELETE", f"{TASKS}/{task_id}/"), DeletedResponse)

    def retry(self, task_id: str) -> StatusResponse:
        return protocol.decode(self._send("POST", f"{TASKS}/{task_id}/retry/"), StatusResponse)

    # ------------------------------------------------------------------------------------------ transport

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request (again after a 503's Retry-After); the answer, read whole."""
        response = self._stream(method, url, **kwargs)
        try:
            response.read()
        finally:
            response.close()
        return response

    def _stream(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request (again after a 503's Retry-After); the answer with its body still to read."""
        retries = 0
        while True:
            try:
                response = self._http.send(self._http.build_request(method, url, **kwargs), stream=True)
            except httpx.TransportError as error:
                raise protocol.unreachable(error, self.base_url) from error
            delay = self.retry_policy.delay(response, retries)
            if delay is None:
                return response
            response.close()
            retries += 1
            time.sleep(delay)

    def _save(self, response: httpx.Response, destination: Destination, fallback: str) -> Path | None:
        with contextlib.closing(response):
            if not response.is_success:
                response.read()
                raise protocol.error_of(response)
            if destination is not None and hasattr(destination, "write"):
                for chunk in response.iter_bytes():
                    destination.write(chunk)
                return None
            path = protocol.target_path(destination, response, fallback)  # type: ignore[arg-type]
            with protocol.written(path) as file:
                for chunk in response.iter_bytes():
                    file.write(chunk)
            return path

    def _next_from_events(self, follow: Follow) -> StatusResponse | None:
        """Statuses from the task's event stream until the final one; None when the stream is not offered, broke,
        or ended early (the caller tries again or polls)."""
        try:
            with httpx_sse.connect_sse(self._http, "GET", follow.events_url, headers=follow.stream_headers(),
                                       timeout=follow.stream_timeout()) as source:
                if source.response.status_code != 200:
                    source.response.read()
                    follow.refused(source.response)
                    return None
                for sse in source.iter_sse():
                    status = follow.event(sse.event, sse.data, sse.id)
                    if status is not None and status.is_finished:
                        return status
        except (httpx.TransportError, httpx_sse.SSEError):
            pass
        follow.broke()
        return None
