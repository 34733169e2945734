"""Helpers of the gateway tests: clips, an embedded app under a TestClient, polling, the app's store."""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from transmute.cli.embedded import create_embedded_app
from transmute.store import TaskStore

DEADLINE = 60.0
"""Seconds a conversion of a test clip may take before a test gives up waiting."""


ISOLATED_ENV = ("TRANSMUTE_MAX_UPLOAD_MB", "TRANSMUTE_DATABASE_URL", "TRANSMUTE_BROKER_URL", "TRANSMUTE_S3_ENDPOINT",
                "TRANSMUTE_DATA_DIR", "TRANSMUTE_PLUGINS", "TRANSMUTE_API_KEYS", "TRANSMUTE_RATE_LIMIT")
"""Settings from the environment that would make a test app something else than embedded-on-a-folder."""


def make_clip(path: Path, lavfi: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", lavfi,
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    return path


@dataclass(frozen=True)
class Media:
    """The clips the tests upload."""

    clip: Path
    """160x120, 2 s, 10 fps: converts in well under a second."""
    longer: Path
    """320x240, 6 s, 30 fps: a conversion long enough to watch its progress move."""
    text: Path
    """A text file with a video's name: not media."""


@contextlib.contextmanager
def embedded_client(data_dir: Path, *, threads: int = 2, env: dict[str, str] | None = None) -> Iterator[TestClient]:
    """A TestClient over a fresh embedded app on `data_dir`, with `env` set while the app is built."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ISOLATED_ENV:
            patch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        app = create_embedded_app(data_dir, threads=threads)
    with TestClient(app, timeout=30) as client:
        yield client


def store_of(client: TestClient) -> TaskStore:
    return client.app.state.services.store


def run_in_app(client: TestClient, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await `function(*args, **kwargs)` on the app's event loop (where its task store lives)."""
    return client.blocking_portal.call(functools.partial(function, *args, **kwargs))


def upload(client: TestClient, path: Path, *, filename: str | None = None, **fields: Any) -> dict:
    """POST a multipart create request; return the JSON body of its 200 answer."""
    with path.open("rb") as handle:
        response = client.post(
            "/api/tasks/create/",
            files={"file": (filename or path.name, handle, "video/mp4")},
            data={name: str(value) for name, value in fields.items()},
        )
    assert response.status_code == 200, response.text
    return response.json()


def wait_finished(client: TestClient, task_id: str, *, deadline: float = DEADLINE) -> dict:
    """Poll the task's status until it is done or failed; return the last status body."""
    give_up = time.monotonic() + deadline
    while True:
        body = client.get(f"/api/tasks/{task_id}/status/").json()
        if body["status"] in ("done", "failed"):
            return body
        assert time.monotonic() < give_up, f"task {task_id} still {body['status']} after {deadline:g} s"
        time.sleep(0.05)
