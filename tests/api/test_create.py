"""POST /api/tasks/create/: a multipart upload or JSON with a URL, every parameter, the spec's answer."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from tests.support.media import Media
from tests.support.tasks import upload, wait_finished
from transmute.plugins.gif import GifOptions

CREATED_MESSAGE = "Задача создана и поставлена в очередь на выполнение"

EVERY_PARAMETER_AS_FORM = {
    "format": "gif", "width": "96", "fps": "8", "start_time": "0", "end_time": "1", "quality": "low",
    "speed": "2.0", "grayscale": "true", "reverse": "false", "boomerang": "false", "high_quality": "false",
    "dither": "none", "keep_original_size": "false",
}
EVERY_PARAMETER_AS_JSON = {
    "format": "gif", "width": 96, "fps": 8, "start_time": 0, "end_time": 1, "quality": "low", "speed": 2.0,
    "grayscale": True, "reverse": False, "boomerang": False, "high_quality": False, "dither": "none",
    "keep_original_size": False,
}
EVERY_PARAMETER_RECORDED = {
    "format": "gif", "width": 96, "fps": 8, "start_time": 0.0, "end_time": 1.0, "quality": "low", "speed": 2.0,
    "grayscale": True, "reverse": False, "boomerang": False, "high_quality": False, "dither": "none",
    "keep_original_size": False,
}


def assert_created_answer(body: dict) -> None:
    assert set(body) == {"success", "task_id", "status", "message", "api_urls"}
    assert body["success"] is True
    assert isinstance(body["task_id"], str) and body["task_id"]
    assert body["status"] == "queued"
    assert body["message"] == CREATED_MESSAGE
    task_id = body["task_id"]
    assert body["api_urls"] == {
        "status": f"/api/tasks/{task_id}/status/",
        "result": f"/api/tasks/{task_id}/result/",
        "download": f"/api/tasks/{task_id}/download/",
    }


def test_an_upload_answers_with_a_queued_task_id_a_message_and_its_api_urls(api: TestClient, media: Media) -> None:
    body = upload(api, media.clip, format="gif", width=64)
    assert_created_answer(body)
    assert wait_finished(api, body["task_id"])["status"] == "done"


def assert_every_parameter_recorded(recorded: dict) -> None:
    """The spec's parameters as sent, and every other option of the GIF format at its default."""
    assert {name: recorded.get(name) for name in EVERY_PARAMETER_RECORDED} == EVERY_PARAMETER_RECORDED
    others = {name: value for name, value in GifOptions().to_dict().items() if name not in EVERY_PARAMETER_RECORDED}
    assert {name: value for name, value in recorded.items() if name not in EVERY_PARAMETER_RECORDED} == others


def test_an_upload_records_every_parameter_of_the_spec(api: TestClient, media: Media) -> None:
    with media.clip.open("rb") as handle:
        response = api.post("/api/tasks/create/", files={"file": ("video.mp4", handle, "video/mp4")},
                            data=EVERY_PARAMETER_AS_FORM)
    assert response.status_code == 200, response.text
    status = wait_finished(api, response.json()["task_id"])
    assert status["status"] == "done", status
    assert_every_parameter_recorded(status["metadata"]["conversion_params"])


def test_a_json_request_with_a_url_records_every_parameter(api: TestClient, http_source: str) -> None:
    response = api.post("/api/tasks/create/", json={"url": f"{http_source}/clip.mp4", **EVERY_PARAMETER_AS_JSON})
    assert response.status_code == 200, response.text
    assert_created_answer(response.json())
    status = wait_finished(api, response.json()["task_id"])
    assert status["status"] == "done", status
    assert_every_parameter_recorded(status["metadata"]["conversion_params"])


def test_the_create_route_answers_without_its_trailing_slash_too(api: TestClient, media: Media) -> None:
    with media.clip.open("rb") as handle:
        response = api.post("/api/tasks/create", files={"file": ("clip.mp4", handle, "video/mp4")})
    assert response.status_code == 200, response.text
    assert_created_answer(response.json())
    wait_finished(api, response.json()["task_id"])


def test_omitted_parameters_take_the_spec_defaults(api: TestClient, http_source: str) -> None:
    response = api.post("/api/tasks/create/", json={"url": f"{http_source}/clip.mp4"})
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    params = api.get(f"/api/tasks/{task_id}/status/").json()["metadata"]["conversion_params"]
    assert params["format"] == "gif"
    assert params["fps"] == 15
    assert params["start_time"] == 0
    assert params["speed"] == 1.0
    assert params["dither"] == "bayer"
    assert params["grayscale"] is params["reverse"] is params["boomerang"] is False
    wait_finished(api, task_id)


@pytest.mark.parametrize(("word", "meaning"), [
    ("true", True), ("false", False), ("1", True), ("0", False), ("yes", True), ("no", False),
    ("on", True), ("off", False), ("TRUE", True),
])
def test_form_booleans_read_true_false_one_zero_yes_no_on_off(
    api: TestClient, http_source: str, word: str, meaning: bool
) -> None:
    # A form with a URL instead of a file: the same parser, and no upload to store for each case.
    response = api.post("/api/tasks/create/", data={"url": f"{http_source}/clip.mp4", "grayscale": word,
                                                    "width": "32", "fps": "2", "end_time": "0.5"})
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    assert api.get(f"/api/tasks/{task_id}/status/").json()["metadata"]["conversion_params"]["grayscale"] is meaning
    wait_finished(api, task_id)


def test_the_format_name_is_read_case_insensitively(api: TestClient, media: Media) -> None:
    body = upload(api, media.clip, format=" GIF ", width=32, fps=2)
    status = wait_finished(api, body["task_id"])
    assert status["metadata"]["target_format"] == "gif"
    assert status["status"] == "done"


def test_every_task_gets_its_own_id(api: TestClient, media: Media) -> None:
    first = upload(api, media.clip, width=32, fps=2)["task_id"]
    second = upload(api, media.clip, width=32, fps=2)["task_id"]
    assert first != second
    wait_finished(api, first)
    wait_finished(api, second)
