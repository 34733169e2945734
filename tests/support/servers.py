"""`transmute serve` as a real process on a free port of 127.0.0.1, on a data folder of the test's."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.embedded import ISOLATED_ENV
from tests.support.net import free_port
from tests.support.tasks import wait_finished
from tests.support.waiting import TimedOut, wait_for

TRANSMUTE = Path(sys.executable).with_name("transmute")
"""The console script of the transmute installed in this virtualenv."""
START_DEADLINE = 30.0
"""Seconds a server may take to answer after it is started."""
TASK_DEADLINE = 90.0
"""Seconds a task on a real server may take to finish."""


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
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        """Start the process and wait until it answers."""
        env = {name: value for name, value in os.environ.items() if name not in ISOLATED_ENV}
        # The clips are served on 127.0.0.1, which transmute refuses unless private URLs are allowed.
        env = env | {"TRANSMUTE_ALLOW_PRIVATE_URLS": "true"} | self.env
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(TRANSMUTE), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                 "--workers", str(self.workers)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        wait_for(self._answers, START_DEADLINE, lambda: f"transmute serve to answer:\n{self.log()}", interval=0.1)
        return self

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, f"transmute serve exited early:\n{self.log()}"
        try:
            # 401: a server with API keys, answering.
            return httpx.get(f"{self.url}/api/formats/", timeout=2).status_code in (200, 401)
        except httpx.TransportError:
            return False

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
        """Poll the task's status until it is done or failed; return the last status body."""
        try:
            return wait_finished(client, task_id, deadline=deadline, base=self.url, interval=0.1)
        except TimedOut as exc:
            raise AssertionError(f"{exc}:\n{self.log()}") from None


@contextlib.contextmanager
def serving(folder: Path, *, workers: int = 1, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A started server on `folder`/data (its log in `folder`), gone with whatever it started when the block ends."""
    server = Server(data_dir=folder / "data", log_path=folder / "serve.log", workers=workers, env=env or {})
    try:
        yield server.start()
    finally:
        server.kill_group()
class KeyedServer(Server):
    """A server whose API needs a key: it is up once its liveness route answers."""

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log()
        try:
            return httpx.get(f"{self.url}/health/live", timeout=2).status_code == 200
        except httpx.TransportError:
            return False
