"""The client's Structs (transmute/client/models.py) mirror the gateway's answers (services/api/schemas.py)
field for field, so the two cannot drift apart; and they read answers with fields they do not know."""

from __future__ import annotations

import msgspec
import pytest

from transmute.client import models
from transmute.core import wire as schemas

MIRRORED = ["ApiUrls", "CreatedResponse", "TaskMetadata", "StatusResponse", "TaskSummary", "Pagination",
            "TaskListResponse", "DeletedResponse"]
NOT_YET_IN_THE_GATEWAY = {"StatusResponse": {"expires_at", "webhook"}}
"""Fields of the common contract (issues 14 and 15) that the client reads where a server sends them."""


def field_names(struct: type) -> set[str]:
    return {field.encode_name for field in msgspec.structs.fields(struct)}


@pytest.mark.parametrize("name", MIRRORED)
def test_each_client_struct_has_exactly_the_fields_the_gateway_writes(name):
    server, client = getattr(schemas, name), getattr(models, name)
    assert field_names(server) <= field_names(client), f"the client's {name} lacks a field the gateway writes"
    assert field_names(client) - field_names(server) <= NOT_YET_IN_THE_GATEWAY.get(name, set())


def test_every_answer_struct_of_the_gateway_is_mirrored():
    answers = {name for name, value in vars(schemas).items() if isinstance(value, type)
               and issubclass(value, msgspec.Struct) and name.endswith("Response")}
    not_for_the_client = {"ErrorResponse", "NotReadyResponse", "ResultResponse", "FailedResultResponse",
                          "FormatsResponse"}
    assert answers - not_for_the_client <= set(MIRRORED)


def test_a_status_with_fields_this_client_does_not_know_is_read():
    body = {"task_id": "1", "status": "paused", "progress": 5, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "started_at": None, "completed_at": None, "error_message": "",
            "is_finished": False, "is_active": True, "duration_seconds": None,
            "metadata": {"source_type": "file", "target_format": "gif", "original_filename": "a.mp4",
                         "file_size": 1, "conversion_params": {}, "colour": "new"},
            "webhook": {"event": "done", "status_code": 200, "attempts": 1, "at": "2026-01-01T00:00:01Z"},
            "a_field_of_the_future": [1, 2]}
    status = msgspec.json.decode(msgspec.json.encode(body), type=models.StatusResponse)
    assert status.progress == 5 and status.webhook is not None and status.webhook.status_code == 200
    assert status.state is None  # a state this client does not know is kept as text
    assert status.status == "paused"
