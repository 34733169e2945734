"""A third-party format, added by installing a package (examples/transmute-plugin-thumbs) and nothing else:
listed, documented, validated and converted by `transmute serve`; and broken plugins, which stop the start
with one line naming them, or fail only their own tasks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.media import E2EMedia
from tests.support.plugins import EXAMPLE, with_plugins
from tests.support.servers import TRANSMUTE

PYTEST = Path(sys.executable).with_name("pytest")


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(TRANSMUTE), *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def probe(data: bytes, tmp_path: Path) -> str:
    picture = tmp_path / "probed"
    picture.write_bytes(data)
    return subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                           "stream=codec_name,width,height", "-of", "csv=p=0", str(picture)],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_the_installed_example_is_listed_by_transmute_formats_with_its_options(example_plugin: Path) -> None:
    listed = run("formats", "--json", env=with_plugins(example_plugin))
    assert listed.returncode == 0, listed.stderr
    formats = {item["name"]: item for item in json.loads(listed.stdout)}
    assert set(formats) >= {"gif", "thumbs"}
    thumbs = formats["thumbs"]
    assert (thumbs["extension"], thumbs["mime_type"]) == ("png", "image/png")
    assert [(option["name"], option["default"], option["allowed"]) for option in thumbs["parameters"]] == [
        ("format", "thumbs", "the name of an installed format"),
        ("count", 5, "an integer from 2 to 20"), ("height", 90, "an integer from 16 to 360")]
    helped = run("convert", "--format", "thumbs", "--help", env=with_plugins(example_plugin))
    assert "--count" in helped.stdout and "--height" in helped.stdout and "--fps" not in helped.stdout


def test_the_example_passes_its_own_tests_as_docs_plugins_md_shows_them(example_plugin: Path, tmp_path: Path) -> None:
    """What a plugin author runs: the example's tests (parse_params, convert_file on a lavfi clip)."""
    copy = shutil.copytree(EXAMPLE / "tests", tmp_path / "tests")
    tested = subprocess.run([str(PYTEST), "-q", "-p", "no:cacheprovider", "-p", "no:asyncio", str(copy)],
                            cwd=tmp_path, env={**os.environ, **with_plugins(example_plugin)}, capture_output=True,
                            text=True, timeout=120)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout


def test_serve_lists_documents_validates_and_converts_the_example(
    start_server, example_plugin: Path, e2e_media: E2EMedia, tmp_path: Path
) -> None:
    server = start_server(env=with_plugins(example_plugin))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        formats = {item["name"]: item for item in client.get("/api/formats/").json()["formats"]}
        assert formats["thumbs"]["mime_type"] == "image/png"
        assert [option["name"] for option in formats["thumbs"]["parameters"]] == ["format", "count", "height"]

        body = client.get("/schema/openapi.json").json()["paths"]["/api/tasks/create/"]["post"]["requestBody"]
        for media_type in ("multipart/form-data", "application/json"):
            schemas = {schema["title"]: schema for schema in body["content"][media_type]["schema"]["anyOf"]}
            thumbs = schemas["ThumbsOptions"]
            assert thumbs["properties"]["format"]["enum"] == ["thumbs"] and "format" in thumbs["required"]
            assert (thumbs["properties"]["count"]["minimum"], thumbs["properties"]["count"]["maximum"]) == (2, 20)
            assert "width" not in thumbs["properties"] and "width" in schemas["GifOptions"]["properties"]

        def create(**fields) -> httpx.Response:
            with e2e_media.video.open("rb") as handle:
                return client.post("/api/tasks/create/", files={"file": ("video.mp4", handle, "video/mp4")},
                                   data={name: str(value) for name, value in fields.items()})

        too_many = create(format="thumbs", count=99)
        assert too_many.status_code == 400
        assert too_many.json()["details"] == {"field": "count"}
        assert "'count' must be an integer from 2 to 20" in too_many.json()["error"]
        gif_option = create(format="thumbs", width=64)
        assert gif_option.status_code == 400
        assert gif_option.json()["details"] == {"field": "width"}
        assert "Unknown parameter 'width' for the thumbs format; known parameters: format, count, height" \
            in gif_option.json()["error"]

        created = create(format="thumbs", count=4, height=48)
        assert created.status_code == 200, created.text
        task_id = created.json()["task_id"]
        finished = server.wait_finished(client, task_id)
        assert (finished["status"], finished["progress"]) == ("done", 100), finished
        result = client.get(f"/api/tasks/{task_id}/result/").json()["result"]
        assert result["filename"].endswith(".png") and result["output_url"].endswith(".png")
        download = client.get(result["download_url"])
        assert download.headers["content-type"] == "image/png"
        assert probe(download.content, tmp_path) == "png,256,48"  # 4 thumbnails of 64x48 (160x120 at 48 px)
        assert client.get(result["output_url"]).content == download.content
    server.stop()


@pytest.mark.parametrize(("plugin", "message"), [
    ("badimport", "The transmute plugin 'badimport' (badimport) failed to load: ImportError: this plugin needs "
                  "libfoo, which is not installed."),
    ("badname", "The transmute plugin 'badname' provides a format that breaks the contract: its name is "
                "'Bad Name!'."),
    ("badoptions", "The transmute plugin 'badoptions' provides a format that breaks the contract: the options of "
                   "'badoptions' are not a FormatOptions Struct."),
], ids=["raises-at-import", "invalid-name", "options-not-a-struct"])
def test_a_broken_plugin_stops_the_start_with_one_line_naming_it(broken_plugins, example_plugin, plugin, message,
                                                                 tmp_path: Path) -> None:
    env = with_plugins(broken_plugins[plugin], example_plugin)
    commands = [("formats",), ("serve", "--port", "1", "--data-dir", str(tmp_path / "data"))]
    if plugin == "badimport":  # the distributed commands check before they connect to anything
        commands += [("api", "--port", "1"), ("worker",)]
    for command in commands:
        started = run(*command, env=env)
        assert started.returncode == 1, (command, started.stdout, started.stderr)
        assert started.stderr == f"transmute: error: {message}\n", command
        assert "Traceback" not in started.stdout
    assert not (tmp_path / "data").exists(), "serve must stop before it creates anything"


def test_a_plugin_whose_converter_raises_fails_only_its_own_tasks(
    start_server, broken_plugins, e2e_media: E2EMedia
) -> None:
    # One attempt: the failing plugin's task is not retried (retries are tested elsewhere).
    server = start_server(env={**with_plugins(broken_plugins["failing"]), "TRANSMUTE_MAX_RETRIES": "0"})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        def create(**fields) -> str:
            with e2e_media.video.open("rb") as handle:
                response = client.post("/api/tasks/create/", files={"file": ("video.mp4", handle, "video/mp4")},
                                       data=fields)
            assert response.status_code == 200, response.text
            return response.json()["task_id"]

        failing, gif = create(format="failing"), create(format="gif", width="64")
        failed = server.wait_finished(client, failing)
        assert failed["status"] == "failed"
        assert failed["error_message"] == "The conversion failed after 1 attempts: an internal error"
        assert server.wait_finished(client, gif)["status"] == "done"
        again = create(format="gif", width="64")  # the server and its conversion threads are still there
        assert server.wait_finished(client, again)["status"] == "done"
        assert client.get(f"/api/tasks/{gif}/download/").content[:6] == b"GIF89a"
