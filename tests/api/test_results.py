"""GET /api/tasks/{id}/result/, /download/ and the /media/ file behind `output_url`."""

from __future__ import annotations

from litestar.testing import TestClient

from tests.support.embedded import run_in_app, store_of
from transmute.core.models import TaskEvent, next_seq, utcnow

RESULT_FIELDS = {"output_url", "download_url", "filename", "file_size", "format", "original_filename",
                 "conversion_params"} | {"format_metadata"}  # the spec's, and what the format told of its file


def unpublished_task(api: TestClient, *, running_at: int | None = None) -> str:
    """A task recorded in the store but never sent to a worker: it stays queued (or running at a progress)."""
    store = store_of(api)
    task = run_in_app(api, store.create, target_format="gif", source_type="url", params={"format": "gif"},
                      original_filename="never.mp4", source_url="http://127.0.0.1:9/never.mp4")
    if running_at is not None:
        event = TaskEvent(task_id=task.id, seq=next_seq(), kind="progress", at=utcnow(), progress=running_at)
        assert run_in_app(api, store.apply_event, event)
    return task.id


def test_the_result_of_a_done_task_has_the_spec_shape(api: TestClient, done_task: dict) -> None:
    task_id = done_task["task_id"]
    response = api.get(f"/api/tasks/{task_id}/result/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "task_id", "status", "result", "completed_at", "expires_at", "duration_seconds",
                         "warnings"}
    assert body["expires_at"] == done_task["expires_at"]
    assert body["warnings"] == []
    assert body["success"] is True
    assert body["task_id"] == task_id
    assert body["status"] == "done"
    assert body["completed_at"] == done_task["completed_at"]
    assert body["duration_seconds"] == done_task["duration_seconds"]
    result = body["result"]
    assert set(result) == RESULT_FIELDS
    assert result["filename"] == f"task_{task_id}_result.gif"
    assert result["output_url"] == f"/media/results/task_{task_id}_result.gif"
    assert result["download_url"] == f"/api/tasks/{task_id}/download/"
    assert result["format"] == "gif"
    assert result["original_filename"] == "video.mp4"
    assert result["conversion_params"] == done_task["metadata"]["conversion_params"]
    assert type(result["file_size"]) is int and result["file_size"] > 0


def test_the_result_of_a_failed_task_has_the_spec_failed_shape(api: TestClient, failed_task: dict) -> None:
    response = api.get(f"/api/tasks/{failed_task['task_id']}/result")
    assert response.status_code == 200
    assert response.json() == {
        "success": False,
        "task_id": failed_task["task_id"],
        "status": "failed",
        "error_message": failed_task["error_message"],
        "completed_at": failed_task["completed_at"],
        "expires_at": failed_task["expires_at"],
    }


def test_the_result_of_a_queued_task_is_a_409_with_its_status_and_progress(api: TestClient) -> None:
    task_id = unpublished_task(api)
    response = api.get(f"/api/tasks/{task_id}/result/")
    assert response.status_code == 409
    body = response.json()
    assert body["success"] is False
    assert body["status"] == "queued"
    assert body["progress"] == 0
    assert body["task_id"] == task_id
    assert "queued" in body["error"]


def test_the_result_of_a_running_task_is_a_409_with_its_progress(api: TestClient) -> None:
    task_id = unpublished_task(api, running_at=42)
    body = api.get(f"/api/tasks/{task_id}/result/").json()
    assert body["success"] is False
    assert (body["status"], body["progress"]) == ("running", 42)
    assert "42%" in body["error"]


def test_the_download_sends_the_gif_with_its_type_name_and_length(api: TestClient, done_task: dict) -> None:
    task_id = done_task["task_id"]
    response = api.get(f"/api/tasks/{task_id}/download/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f'filename="task_{task_id}_result.gif"' in disposition
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content[:6] == b"GIF89a"
    result = api.get(f"/api/tasks/{task_id}/result/").json()["result"]
    assert len(response.content) == result["file_size"]


def test_the_download_route_answers_without_its_trailing_slash_too(api: TestClient, done_task: dict) -> None:
    with_slash = api.get(f"/api/tasks/{done_task['task_id']}/download/")
    without_slash = api.get(f"/api/tasks/{done_task['task_id']}/download")
    assert without_slash.status_code == 200
    assert without_slash.content == with_slash.content


def test_output_url_serves_the_same_gif_bytes(api: TestClient, done_task: dict) -> None:
    task_id = done_task["task_id"]
    output_url = api.get(f"/api/tasks/{task_id}/result/").json()["result"]["output_url"]
    response = api.get(output_url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content == api.get(f"/api/tasks/{task_id}/download/").content


def test_a_media_url_that_names_no_result_is_a_404_json_error(api: TestClient, done_task: dict) -> None:
    for path in ("/media/results/task_987654_result.gif", "/media/results/whatever.gif",
                 f"/media/results/task_{done_task['task_id']}_result.png", "/media/sources/anything"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["success"] is False


def test_downloading_a_task_that_is_not_done_is_a_409_json_error(api: TestClient) -> None:
    for task_id in (unpublished_task(api), unpublished_task(api, running_at=10)):
        response = api.get(f"/api/tasks/{task_id}/download/")
        assert response.status_code == 409
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["success"] is False and "poll its status" in body["error"]


def test_downloading_a_failed_task_is_a_409_that_says_why(api: TestClient, failed_task: dict) -> None:
    response = api.get(f"/api/tasks/{failed_task['task_id']}/download/")
    assert response.status_code == 409
    body = response.json()
    assert body["success"] is False
    assert body["status"] == "failed"
    assert failed_task["error_message"] in body["error"]


def test_result_and_download_of_an_unknown_task_are_404_json_errors(api: TestClient) -> None:
    for path in ("/api/tasks/987654321/result/", "/api/tasks/987654321/download/"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {"success": False, "error": "No task with id '987654321'."}
