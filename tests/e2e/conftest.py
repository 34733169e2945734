"""`transmute serve` as a real process on a free port, driven over HTTP (httpx and curl)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.support import ISOLATED_ENV, make_clip

TRANSMUTE = Path(sys.executable).with_name("transmute")
START_DEADLINE = 30.0
TASK_DEADLINE = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """One `transmute serve` process on a data folder; it can be stopped and started again on the same folder."""

    data_dir: Path
    log_path: Path
    workers: int = 2
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        env = {name: value for name, value in os.environ.items() if name not in ISOLATED_ENV}
        # The clips are served on 127.0.0.1, which transmute refuses unless private URLs are allowed.
        env = env | {"TRANSMUTE_ALLOW_PRIVATE_URLS": "true"} | self.env
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(TRANSMUTE), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                 "--workers", str(self.workers)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        give_up = time.monotonic() + START_DEADLINE
        while True:
            assert self.process.poll() is None, f"transmute serve exited early:\n{self.log()}"
            try:
                if httpx.get(f"{self.url}/api/formats/", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < give_up, f"transmute serve did not answer in {START_DEADLINE:g} s:\n{self.log()}"
            time.sleep(0.1)

    def stop(self, *, deadline: float = 30) -> None:
        """SIGTERM the server and see it shut down cleanly within `deadline` seconds.

        Uvicorn shuts down gracefully, then re-raises the signal: the exit status is -SIGTERM (or 0).
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=deadline)
        finally:
            self.kill_group()
        assert status in (0, -signal.SIGTERM), f"exit status {status}:\n{self.log()}"
        assert self.log().rstrip().endswith(f"Finished server process [{self.process.pid}]"), self.log()
        assert "Traceback" not in self.log(tail=None), self.log(tail=None)

    def kill_group(self) -> None:
        """Whatever the server left behind (an ffmpeg it started) goes too."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log(self, *, tail: int | None = 4000) -> str:
        """The server's output (its last `tail` characters; all of it with tail=None)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text if tail is None else text[-tail:]

    def wait_finished(self, client: httpx.Client, task_id: str, *, deadline: float = TASK_DEADLINE) -> dict:
        give_up = time.monotonic() + deadline
        while True:
            body = client.get(f"{self.url}/api/tasks/{task_id}/status/").json()
            if body["status"] in ("done", "failed"):
                return body
            assert time.monotonic() < give_up, f"task {task_id} still {body['status']}:\n{self.log()}"
            time.sleep(0.1)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """Start `transmute serve` (on a fresh data folder unless one is given); every server is gone afterwards."""
    started: list[Server] = []

    def start(data_dir: Path | None = None, *, workers: int = 2, port: int | None = None,
              env: dict[str, str] | None = None) -> Server:
        server = Server(data_dir=data_dir or tmp_path / "data", log_path=tmp_path / "serve.log", workers=workers,
                        env=env or {})
        if port is not None:
            server.port = port
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill_group()


@dataclass(frozen=True)
class E2EMedia:
    folder: Path
    video: Path
    """video.mp4, the spec's file name: 160x120, 2 s."""
    long: Path
    """640x480, 10 s, 30 fps: a conversion of several seconds at full size and high quality."""


@pytest.fixture(scope="session")
def e2e_media(tmp_path_factory: pytest.TempPathFactory) -> E2EMedia:
    folder = tmp_path_factory.mktemp("e2e-media")
    return E2EMedia(
        folder=folder,
        video=make_clip(folder / "video.mp4", "testsrc2=size=160x120:rate=10:duration=2"),
        long=make_clip(folder / "long.mp4", "testsrc2=size=640x480:rate=30:duration=10"),
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def clip_server(e2e_media: E2EMedia) -> Iterator[str]:
    """Base URL of a local HTTP server (a thread on 127.0.0.1) serving the clips."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(e2e_media.folder)))
    threading.Thread(target=server.serve_forever, daemon=True, name="e2e-clip-server").start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
