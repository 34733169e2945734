"""Distributed mode against real components: `transmute api` and `transmute worker` as subprocesses, on this
machine's RabbitMQ and PostgreSQL, with a moto server as the S3 API.

Isolation: one RabbitMQ virtual host per session (its transmute queues deleted around every test), one
fresh PostgreSQL database and one fresh bucket per test. Clips are tiny lavfi videos served over HTTP from
127.0.0.1 (so TRANSMUTE_ALLOW_PRIVATE_URLS is on).
"""

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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from minio import Minio

ROOT = Path(__file__).resolve().parents[2]
TRANSMUTE = str(Path(sys.executable).with_name("transmute"))
PLUGIN_DIR = Path(__file__).resolve().parent / "plugins"
QUEUES = [f"transmute.{name}{suffix}" for name in ("convert", "events") for suffix in ("", ".DQ", ".XQ")]
S3_KEYS = {"access": "testing", "secret": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", *args], check=True)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def wait_for(condition, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


# ------------------------------------------------------------------------------------------ components


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`one` (160x120, 1 s), `two` (160x120, 2 s), `long` (320x240, 20 s: seconds of work to convert)."""
    folder = tmp_path_factory.mktemp("clips")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    made = {"one": folder / "one.mp4", "two": folder / "two.mp4", "long": folder / "long.mp4"}
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1", *x264, str(made["one"]))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2", *x264, str(made["two"]))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=20", *x264, str(made["long"]))
    return made


@pytest.fixture(scope="session")
def clip_server(clips: dict[str, Path]) -> Iterator[str]:
    """The clips over HTTP: `{base}/one.mp4`..."""
    handler = functools.partial(_QuietHandler, directory=str(clips["one"].parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server: `127.0.0.1:<port>`."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of its own for this session; its amqp:// URL."""
    name = f"transmute_test_{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    wait_for(_rabbitmq_up, 90, "RabbitMQ to be up again")
    rabbitmqctl("delete_vhost", name)


def _rabbitmq_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


def delete_queues(amqp_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for queue in QUEUES:
            channel.queue_delete(queue)
    finally:
        connection.close()


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test; its SQLAlchemy URL."""
    name = f"transmute_test_{uuid.uuid4().hex[:10]}"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c"]
    subprocess.run([*psql, f"CREATE DATABASE {name}"], check=True, capture_output=True)
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True, capture_output=True)


# ------------------------------------------------------------------------------------------ a TCP proxy


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` makes the target unreachable (connections refused,
    open ones dropped) until `restore()`."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_port()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            self._close(listener)  # shutdown() wakes the thread blocked in accept(); close() alone would not
        with self._lock:
            for sock in list(self._open):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._close(source)
            self._close(sink)


# ------------------------------------------------------------------------------------------ the cluster


@dataclass
class Cluster:
    """One test's distributed transmute: an api and workers as real processes, and a client for both."""

    env: dict[str, str]
    logs: Path
    s3_endpoint: str
    bucket: str
    port: int = field(default_factory=free_port)
    api_process: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    _log_files: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        self._log_files.append(log)
        return subprocess.Popen([TRANSMUTE, *args], env={**self.env, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    def start_api(self, workers: int = 1) -> None:
        self.api_process = self._spawn("api", ["api", "--port", str(self.port), "--workers", str(workers)])
        wait_for(self._api_ready, 60, f"the api to answer (log: {self.logs / 'api.log'})")

    def _api_ready(self) -> bool:
        assert self.api_process is not None and self.api_process.poll() is None, self.log("api")
        try:
            return httpx.get(f"{self.url}/api/formats/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop_api(self) -> None:
        assert self.api_process is not None
        stop(self.api_process)
        self.api_process = None

    def start_worker(self, processes: int = 1, threads: int = 1, **env: str) -> subprocess.Popen:
        name = f"worker{len(self.workers)}"
        process = self._spawn(name, ["worker", "--processes", str(processes), "--threads", str(threads)], env)
        self.workers.append(process)
        wait_for(lambda: len(worker_pids(process)) == processes, 30, f"{name}'s processes")
        return process

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def s3(self) -> Minio:
        return Minio(self.s3_endpoint, access_key=S3_KEYS["access"], secret_key=S3_KEYS["secret"], secure=False)

    def objects(self, prefix: str) -> list[str]:
        return sorted(item.object_name for item in self.s3().list_objects(self.bucket, prefix=prefix, recursive=True))

    def close(self) -> None:
        for process in [self.api_process, *self.workers]:
            if process is not None:
                stop(process)
        for log in self._log_files:
            log.close()


def children(pid: int) -> list[int]:
    """The pids of a process's direct children (started by any of its threads)."""
    found: list[int] = []
    for thread in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(item) for item in (thread / "children").read_text().split())
        except OSError:
            continue
    return found


def worker_pids(process: subprocess.Popen) -> list[int]:
    """The worker processes a `transmute worker` supervises (not multiprocessing's resource tracker)."""
    found = []
    for pid in children(process.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            found.append(pid)
    return found


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process; SIGKILL its whole group when it does not end in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group (an orphaned ffmpeg)


@pytest.fixture
def cluster(tmp_path: Path, database: str, rabbitmq_vhost: str, s3_server: str) -> Iterator[Cluster]:
    """The environment of one distributed transmute (nothing started yet: the test starts what it needs)."""
    delete_queues(rabbitmq_vhost)
    bucket = f"transmute-{uuid.uuid4().hex[:10]}"
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("TRANSMUTE_")},
        "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "TRANSMUTE_BROKER_URL": rabbitmq_vhost,
        "TRANSMUTE_DATABASE_URL": database,
        "TRANSMUTE_S3_ENDPOINT": s3_server,
        "TRANSMUTE_S3_ACCESS_KEY": S3_KEYS["access"],
        "TRANSMUTE_S3_SECRET_KEY": S3_KEYS["secret"],
        "TRANSMUTE_S3_BUCKET": bucket,
        "TRANSMUTE_S3_SECURE": "false",
        "TRANSMUTE_ALLOW_PRIVATE_URLS": "true",
        "TRANSMUTE_DATA_DIR": str(tmp_path / "data"),
        "TRANSMUTE_RECONCILE_AFTER": "3",
        "TRANSMUTE_RECONCILE_INTERVAL": "1",
        "TRANSMUTE_RECONCILE_LEASE": "5",
        "TMPDIR": str(tmp_path),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Cluster(env=env, logs=logs, s3_endpoint=s3_server, bucket=bucket)
    yield running
    running.close()
    if _rabbitmq_up():
        delete_queues(rabbitmq_vhost)


# ------------------------------------------------------------------------------------------ client helpers


def create_upload(client: httpx.Client, path: Path, **params: Any) -> httpx.Response:
    with path.open("rb") as handle:
        return client.post("/api/tasks/create/", files={"file": (path.name, handle, "video/mp4")},
                           data={name: str(value) for name, value in params.items()})


def create_url(client: httpx.Client, url: str, **params: Any) -> httpx.Response:
    return client.post("/api/tasks/create/", json={"url": url, **params})


def status(client: httpx.Client, task_id: str) -> dict[str, Any]:
    response = client.get(f"/api/tasks/{task_id}/status/")
    assert response.status_code == 200, response.text
    return response.json()


def wait_finished(client: httpx.Client, task_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll until every task is done or failed; their last statuses."""
    last: dict[str, dict[str, Any]] = {}

    def all_finished() -> bool:
        for task_id in task_ids:
            if last.get(task_id, {}).get("status") not in ("done", "failed"):
                try:
                    last[task_id] = status(client, task_id)
                except httpx.HTTPError:
                    return False
        return all(last[task_id]["status"] in ("done", "failed") for task_id in task_ids)

    try:
        wait_for(all_finished, timeout, "the tasks to finish", interval=0.3)
    except AssertionError:
        stuck = {task_id: last.get(task_id) for task_id in task_ids
                 if last.get(task_id, {}).get("status") not in ("done", "failed")}
        raise AssertionError(f"tasks not finished after {timeout:g} s: {stuck}") from None
    return last


def is_gif(data: bytes) -> bool:
    return data[:6] in (b"GIF87a", b"GIF89a") and data.endswith(b";")
