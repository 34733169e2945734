"""The gateway under test: the real embedded app (Litestar + Dramatiq worker threads + SQLite + files) over
a temporary data folder, driven by Litestar's TestClient, converting tiny lavfi clips with real ffmpeg.

One app serves the whole session (`api`); tests that need a fresh or differently configured app make
their own with `embedded_client`.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.support import Media, embedded_client, make_clip, upload, wait_finished


@pytest.fixture(scope="session", autouse=True)
def private_urls_allowed() -> Iterator[None]:
    """The URL sources of these tests are served on 127.0.0.1, which transmute refuses unless allowed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRANSMUTE_ALLOW_PRIVATE_URLS", "true")
        yield


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    folder = tmp_path_factory.mktemp("api-media")
    text = folder / "notes.mp4"
    text.write_text("This is a shopping list, not a video.\n")
    return Media(
        clip=make_clip(folder / "clip.mp4", "testsrc2=size=160x120:rate=10:duration=2"),
        longer=make_clip(folder / "longer.mp4", "testsrc2=size=320x240:rate=30:duration=6"),
        text=text,
    )


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with embedded_client(tmp_path_factory.mktemp("api-data")) as client:
        yield client


@pytest.fixture(scope="session")
def done_task(api: TestClient, media: Media) -> dict:
    """A task converted from the small clip: its final status body."""
    created = upload(api, media.clip, filename="video.mp4", width=64, fps=5)
    status = wait_finished(api, created["task_id"])
    assert status["status"] == "done", status
    return status


@pytest.fixture(scope="session")
def failed_task(api: TestClient, http_source: str) -> dict:
    """A task whose source URL is not a video (an upload that is not is refused at create): its final status."""
    response = api.post("/api/tasks/create/", json={"url": f"{http_source}/notes.mp4"})
    assert response.status_code == 200, response.text
    status = wait_finished(api, response.json()["task_id"])
    assert status["status"] == "failed", status
    return status


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def http_source(media: Media) -> Iterator[str]:
    """Base URL of a local HTTP server (a thread on 127.0.0.1) serving the media folder."""
    handler = functools.partial(_QuietHandler, directory=str(media.clip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="test-http-source")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
