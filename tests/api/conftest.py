"""The gateway under test: the real embedded app (Litestar + Dramatiq worker threads + SQLite + files) over
a temporary data folder, driven by Litestar's TestClient, converting tiny lavfi clips with real ffmpeg.

One app serves the whole session (`api`); tests that need a fresh or differently configured app make
their own with `embedded_client`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.support.embedded import embedded_client
from tests.support.lifecycle import make_lifecycle_clips
from tests.support.media import Media
from tests.support.net import serving_folder
from tests.support.tasks import upload, wait_finished


@pytest.fixture(scope="session", autouse=True)
def private_urls_allowed() -> Iterator[None]:
    """The URL sources of these tests are served on 127.0.0.1, which transmute refuses unless allowed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRANSMUTE_ALLOW_PRIVATE_URLS", "true")
        yield


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """The clips these tests upload (see Media)."""
    return Media.make(tmp_path_factory.mktemp("api-media"))


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The embedded app of the session."""
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


@pytest.fixture(scope="session")
def http_source(media: Media) -> Iterator[str]:
    """Base URL of a local HTTP server (a thread on 127.0.0.1) serving the media folder."""
    with serving_folder(media.clip.parent) as base:
        yield base


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The lifecycle tests' clips (tests/support/lifecycle.py), made once for the session."""
    return make_lifecycle_clips(tmp_path_factory.mktemp("lifecycle-clips"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def app(data_dir: Path) -> Iterator[TestClient]:
    """A fresh app with one conversion thread (so a second task waits in the queue behind a first)."""
    with embedded_client(data_dir, threads=1) as client:
        yield client
