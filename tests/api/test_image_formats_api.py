"""WebP and APNG through the embedded gateway: their extension and MIME type on every way out, their options."""

from __future__ import annotations

import io
import zipfile

import pytest
from litestar.testing import TestClient

from tests.support.animated_images import read_apng, read_webp
from tests.support.media import Media
from tests.support.tasks import upload, wait_finished


@pytest.fixture(scope="module")
def webp_task(api: TestClient, media: Media) -> str:
    created = upload(api, media.clip, filename="video.mp4", format="webp", width=64, fps=5, loop=2)
    status = wait_finished(api, created["task_id"])
    assert status["status"] == "done", status
    return created["task_id"]


@pytest.fixture(scope="module")
def apng_task(api: TestClient, media: Media) -> str:
    created = upload(api, media.clip, filename="video.mp4", format="apng", width=64, fps=5)
    status = wait_finished(api, created["task_id"])
    assert status["status"] == "done", status
    return created["task_id"]


@pytest.mark.parametrize(("task", "extension", "mime_type"), [("webp_task", "webp", "image/webp"),
                                                               ("apng_task", "png", "image/apng")])
def test_download_and_output_url_carry_the_formats_extension_and_type(
        api: TestClient, request, task: str, extension: str, mime_type: str, tmp_path) -> None:
    task_id = request.getfixturevalue(task)
    result = api.get(f"/api/tasks/{task_id}/result/").json()["result"]
    assert result["filename"] == f"task_{task_id}_result.{extension}"
    assert result["output_url"] == f"/media/results/task_{task_id}_result.{extension}"
    download = api.get(f"/api/tasks/{task_id}/download/")
    assert download.status_code == 200
    assert download.headers["content-type"] == mime_type
    assert f'filename="task_{task_id}_result.{extension}"' in download.headers["content-disposition"]
    served = api.get(result["output_url"])
    assert served.headers["content-type"] == mime_type and served.content == download.content
    saved = tmp_path / result["filename"]
    saved.write_bytes(download.content)
    animation = read_webp(saved) if extension == "webp" else read_apng(saved)
    assert (animation.width, animation.height, animation.frame_count) == (64, 48, 10)
    assert animation.loop_count == (2 if extension == "webp" else 0)


def test_a_batch_zip_names_each_member_with_its_formats_extension(api: TestClient, webp_task: str,
                                                                   apng_task: str) -> None:
    response = api.get("/api/tasks/batch-download/", params={"task_ids": f"{webp_task},{apng_task}"})
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == sorted([f"task_{webp_task}_result.webp",
                                                     f"task_{apng_task}_result.png"])
        assert archive.read(f"task_{webp_task}_result.webp")[8:12] == b"WEBP"


@pytest.mark.parametrize(("format_name", "option", "value"), [("webp", "dither", "bayer"),
                                                               ("apng", "quality", "50"),
                                                               ("apng", "lossless", "true")])
def test_an_option_of_another_format_is_a_400_naming_it(api: TestClient, media: Media, format_name: str,
                                                        option: str, value: str) -> None:
    with media.clip.open("rb") as handle:
        response = api.post("/api/tasks/create/", files={"file": ("clip.mp4", handle, "video/mp4")},
                            data={"format": format_name, option: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert f"Unknown parameter {option!r} for the {format_name} format" in error
    assert "loop" in error  # the format's own options are listed


def test_a_webp_quality_out_of_range_is_a_400_saying_what_it_takes(api: TestClient) -> None:
    response = api.post("/api/tasks/create/", json={"url": "http://127.0.0.1:9/x.mp4", "format": "webp",
                                                    "quality": 120})
    assert response.status_code == 400
    assert "'quality' must be an integer from 0 to 100" in response.json()["error"]


def test_formats_lists_both_with_their_options(api: TestClient) -> None:
    formats = {item["name"]: item for item in api.get("/api/formats/").json()["formats"]}
    assert (formats["webp"]["extension"], formats["webp"]["mime_type"]) == ("webp", "image/webp")
    assert (formats["apng"]["extension"], formats["apng"]["mime_type"]) == ("png", "image/apng")
    webp = {option["name"]: option for option in formats["webp"]["parameters"]}
    assert (webp["quality"]["default"], webp["quality"]["minimum"], webp["quality"]["maximum"]) == (75, 0, 100)
    assert webp["lossless"]["default"] is False and webp["loop"]["default"] == 0
    assert "dither" not in webp
