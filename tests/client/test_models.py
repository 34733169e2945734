"""The client reads the API's answers with the shared wire shapes (transmute/core/wire.py, which the gateway
writes): every route's real answer decodes into them, and the client's looser readings (values and fields of
newer or older servers) are only overrides of those shapes, never copies."""

from __future__ import annotations

import httpx
import msgspec
import pytest

import transmute.client
from tests.support.servers import TASK_DEADLINE, Server
from transmute.client import Client, models
from transmute.core import wire

ANSWERS = [value for value in vars(transmute.client).values()
           if isinstance(value, type) and issubclass(value, msgspec.Struct)]


def field_names(struct: type) -> set[str]:
    return {field.encode_name for field in msgspec.structs.fields(struct)}


@pytest.mark.parametrize("struct", ANSWERS, ids=lambda struct: struct.__name__)
def test_each_answer_type_of_the_client_is_a_shared_wire_shape_with_no_field_of_its_own(struct):
    shared = next(base for base in struct.__mro__ if base.__module__ == wire.__name__)
    assert field_names(struct) == field_names(shared)


def test_every_route_answers_what_the_shared_shapes_and_the_client_read(server: Server, clips):
    with Client(server.url, poll_interval=0.1) as client, httpx.Client(base_url=server.url, timeout=30) as http:
        created = client.create(clips["small"], width=48, fps=5)
        assert isinstance(created, wire.CreatedResponse)
        final = client.wait(created.task_id, timeout=TASK_DEADLINE)
        assert final.status == "done", final.error_message
        tasks = f"/api/tasks/{created.task_id}"

        def shared(method: str, url: str, struct: type, ok: bool = True) -> object:
            response = http.request(method, url)
            assert response.is_success is ok, response.text
            return msgspec.json.decode(response.content, type=struct)  # strictly: every field, every enum

        assert shared("GET", f"{tasks}/status/", wire.StatusResponse) == msgspec.convert(
            msgspec.to_builtins(client.status(created.task_id)), wire.StatusResponse)
        assert shared("GET", f"{tasks}/result/", wire.ResultResponse).result.format == "gif"
        listing = shared("GET", "/api/tasks/", wire.TaskListResponse)
        assert created.task_id in {task.task_id for task in listing.tasks}
        assert created.task_id in {task.task_id for task in client.list(per_page=100).tasks}
        assert "gif" in {format.name for format in shared("GET", "/api/formats/", wire.FormatsResponse).formats}
        assert shared("GET", "/api/tasks/nope/status/", wire.ErrorResponse, ok=False).success is False
        assert isinstance(client.delete(created.task_id), wire.DeletedResponse)
        assert shared("GET", f"{tasks}/status/", wire.ErrorResponse, ok=False).error


STATUS = {"task_id": "1", "status": "done", "progress": 100, "created_at": "2026-01-01T00:00:00Z",
          "updated_at": "2026-01-01T00:00:00Z", "started_at": None, "completed_at": None, "error_message": "",
          "is_finished": True, "is_active": False, "duration_seconds": None,
          "metadata": {"source_type": "file", "target_format": "gif", "original_filename": "a.mp4",
                       "file_size": 1, "conversion_params": {}}}
"""A status as a server older than expiry, warnings and webhooks (issues 14 and 15) writes it."""


def test_a_status_with_values_and_fields_this_client_does_not_know_is_read():
    newer = {**STATUS, "status": "paused", "a_field_of_the_future": [1, 2],
             "metadata": {**STATUS["metadata"], "source_type": "s3", "colour": "new"},
             "webhook": {"event": "paused", "status_code": 200, "attempts": 1, "at": "2026-01-01T00:00:01Z"}}
    status = msgspec.json.decode(msgspec.json.encode(newer), type=models.StatusResponse)
    assert status.progress == 100 and status.webhook is not None and status.webhook.event == "paused"
    assert status.state is None  # a state this client does not know is kept as text
    assert status.status == "paused" and status.metadata.source_type == "s3"


def test_a_status_and_a_listing_of_an_older_server_are_read_with_defaults():
    status = msgspec.json.decode(msgspec.json.encode(STATUS), type=models.StatusResponse)
    assert status.expires_at is None and status.warnings == [] and status.webhook is None and status.attempt == 1

    summary = {key: STATUS[key] for key in ("task_id", "status", "progress", "created_at", "updated_at",
                                            "started_at", "completed_at", "error_message", "duration_seconds")}
    summary |= {"target_format": "gif", "original_filename": "a.mp4", "file_size": 1,
                "api_urls": {"status": "s", "result": "r", "download": "d"}}
    page = {"tasks": [summary], "pagination": {"page": 1, "per_page": 20, "total": 1, "pages": 1,
                                               "has_next": False, "has_previous": False}}
    listing = msgspec.json.decode(msgspec.json.encode(page), type=models.TaskListResponse)
    assert listing.tasks[0].expires_at is None and listing.tasks[0].status == "done"
