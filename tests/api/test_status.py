"""GET /api/tasks/{id}/status/: every field of the spec, with its type and meaning, as a task moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar.testing import TestClient

from tests.support.media import Media, make_truncated
from tests.support.tasks import DEADLINE, upload, wait_finished
from tests.support.waiting import wait_for

STATUS_FIELDS = {
    "success", "task_id", "status", "progress", "created_at", "updated_at", "started_at", "completed_at",
    "error_message", "is_finished", "is_active", "duration_seconds", "metadata", "warnings", "attempt", "expires_at",
    "webhook",
}
METADATA_FIELDS = {"source_type", "target_format", "original_filename", "file_size", "conversion_params"} | {
    "format_metadata"}  # the spec's, and what the format told of its result (a sprite's tile times)


def parse_utc(text: str) -> datetime:
    """An ISO-8601 UTC timestamp as the spec writes it (`2024-01-01T12:00:00Z`)."""
    assert isinstance(text, str) and text.endswith("Z"), text
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() == timedelta(0)
    return parsed


def test_a_done_task_has_every_status_field_of_the_spec_with_its_type(done_task: dict) -> None:
    assert set(done_task) == STATUS_FIELDS
    assert done_task["success"] is True
    assert isinstance(done_task["task_id"], str)
    assert done_task["status"] == "done"
    assert type(done_task["progress"]) is int and done_task["progress"] == 100
    assert done_task["error_message"] == ""
    assert done_task["is_finished"] is True
    assert done_task["is_active"] is False
    assert type(done_task["duration_seconds"]) in (int, float)
    assert set(done_task["metadata"]) == METADATA_FIELDS
    assert done_task["warnings"] == []


def test_timestamps_are_iso_8601_utc_and_in_the_order_of_the_tasks_life(done_task: dict) -> None:
    created = parse_utc(done_task["created_at"])
    started = parse_utc(done_task["started_at"])
    completed = parse_utc(done_task["completed_at"])
    updated = parse_utc(done_task["updated_at"])
    now = datetime.now(UTC)
    assert now - timedelta(minutes=10) < created <= started <= completed <= updated <= now + timedelta(seconds=1)


def test_a_done_task_expires_a_day_after_it_completed_by_default(done_task: dict) -> None:
    expires = parse_utc(done_task["expires_at"])
    assert expires - parse_utc(done_task["completed_at"]) == timedelta(hours=24)


def test_duration_seconds_is_the_conversion_time_from_start_to_completion(done_task: dict) -> None:
    span = (parse_utc(done_task["completed_at"]) - parse_utc(done_task["started_at"])).total_seconds()
    # The timestamps are shown to the second; the duration is exact.
    assert abs(done_task["duration_seconds"] - span) <= 1
    assert 0 <= done_task["duration_seconds"] < DEADLINE


def test_the_metadata_of_an_upload_names_its_file_size_format_and_parameters(done_task: dict, media: Media) -> None:
    metadata = done_task["metadata"]
    assert metadata["source_type"] == "file"
    assert metadata["target_format"] == "gif"
    assert metadata["original_filename"] == "video.mp4"
    assert metadata["file_size"] == media.clip.stat().st_size
    assert metadata["conversion_params"]["width"] == 64
    assert metadata["conversion_params"]["fps"] == 5


def test_the_metadata_of_a_url_task_names_the_url_file_and_its_downloaded_size(
    api: TestClient, http_source: str, media: Media
) -> None:
    response = api.post("/api/tasks/create/", json={"url": f"{http_source}/clip.mp4?x=1", "width": 32, "fps": 2})
    assert response.status_code == 200, response.text
    status = wait_finished(api, response.json()["task_id"])
    assert status["status"] == "done", status
    assert status["metadata"]["source_type"] == "url"
    assert status["metadata"]["original_filename"] == "clip.mp4"
    assert status["metadata"]["file_size"] == media.clip.stat().st_size


def test_a_queued_task_is_active_with_no_start_no_completion_and_no_duration(api: TestClient, media: Media) -> None:
    # Two long conversions take both worker threads; a third task waits in the queue behind them.
    busy = [upload(api, media.longer, high_quality="true", keep_original_size="true")["task_id"] for _ in range(2)]
    queued = upload(api, media.clip, width=32, fps=2)["task_id"]
    status = api.get(f"/api/tasks/{queued}/status/").json()
    assert status["status"] == "queued"
    assert status["progress"] == 0
    assert status["started_at"] is None
    assert status["completed_at"] is None
    assert status["duration_seconds"] is None
    assert status["is_active"] is True
    assert status["is_finished"] is False
    assert status["error_message"] == ""
    parse_utc(status["created_at"])
    for task_id in [*busy, queued]:
        assert wait_finished(api, task_id)["status"] == "done"


def test_progress_moves_through_intermediate_values_while_a_task_runs(api: TestClient, media: Media) -> None:
    task_id = upload(api, media.longer, high_quality="true", keep_original_size="true", fps=25)["task_id"]
    seen: list[dict] = []

    def finished() -> bool:
        seen.append(api.get(f"/api/tasks/{task_id}/status/").json())
        return seen[-1]["status"] in ("done", "failed")

    wait_for(finished, DEADLINE, lambda: f"the task to finish: {seen[-1:]}", interval=0.02)
    assert seen[-1]["status"] == "done", seen[-1]
    progress = [status["progress"] for status in seen]
    assert all(type(value) is int for value in progress)
    assert progress == sorted(progress), "progress never goes back"
    assert any(0 < value < 100 for value in progress), progress
    running = [status for status in seen if status["status"] == "running"]
    assert running, "the task was seen running"
    for status in running:
        assert status["is_active"] is True and status["is_finished"] is False
        assert status["started_at"] is not None and status["completed_at"] is None
        assert type(status["duration_seconds"]) in (int, float) and status["duration_seconds"] >= 0
        assert 0 <= status["progress"] < 100


def test_a_failed_task_says_why_and_is_finished(failed_task: dict) -> None:
    assert set(failed_task) == STATUS_FIELDS
    assert failed_task["is_finished"] is True
    assert failed_task["is_active"] is False
    assert failed_task["progress"] < 100
    assert parse_utc(failed_task["completed_at"])
    message = failed_task["error_message"]
    assert isinstance(message, str) and len(message) > 10
    assert "Traceback" not in message


def test_the_status_route_answers_without_its_trailing_slash_too(api: TestClient, done_task: dict) -> None:
    response = api.get(f"/api/tasks/{done_task['task_id']}/status")
    assert response.status_code == 200
    assert response.json()["task_id"] == done_task["task_id"]


def test_the_status_of_an_unknown_task_is_a_404_json_error(api: TestClient) -> None:
    for task_id in ("987654321", "not-a-task"):
        response = api.get(f"/api/tasks/{task_id}/status/")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["success"] is False
        assert task_id in body["error"]


def test_a_truncated_upload_is_done_with_a_warning_in_its_status_and_result(api: TestClient, tmp_path) -> None:
    created = upload(api, make_truncated(tmp_path), fps=5)
    status = wait_finished(api, created["task_id"])
    assert status["status"] == "done", status
    [warning] = status["warnings"]
    assert "instead of the 4.0 s expected" in warning and "truncated" in warning
    assert api.get(f"/api/tasks/{created['task_id']}/result/").json()["warnings"] == [warning]
