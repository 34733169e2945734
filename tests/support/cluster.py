"""Distributed mode as real processes: `transmute api` and `transmute worker` on this machine's RabbitMQ and
PostgreSQL, with a moto server as the S3 API.

Isolation: one RabbitMQ virtual host per session (its transmute queues deleted around every test), one fresh
PostgreSQL database and one fresh bucket per test.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pika
from minio import Minio

from tests.support.net import free_port, free_ports
from tests.support.processes import children, is_alive, stop
from tests.support.servers import TRANSMUTE
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "tests" / "distributed" / "plugins"
"""Throw-away plugins the workers can load (on their PYTHONPATH)."""
QUEUES = [f"transmute.{name}{suffix}" for name in ("convert", "events") for suffix in ("", ".DQ", ".XQ")]
S3_KEYS = {"access": "testing", "secret": "testing"}


def rabbitmqctl(*args: str) -> None:
    """Run `rabbitmqctl -q ARGS`, failing the test when it fails."""
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def rabbitmq_up() -> bool:
    """Whether RabbitMQ accepts connections on 127.0.0.1:5672."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of its own while the block runs; its amqp:// URL."""
    name = f"transmute_test_{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    wait_for(rabbitmq_up, 90, "RabbitMQ to be up again")
    rabbitmqctl("delete_vhost", name)


def delete_queues(amqp_url: str) -> None:
    """Delete transmute's queues (and their delay and dead-letter queues) on the virtual host of `amqp_url`."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for queue in QUEUES:
            channel.queue_delete(queue)
    finally:
        connection.close()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database while the block runs; its SQLAlchemy URL."""
    name = f"transmute_test_{uuid.uuid4().hex[:10]}"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c"]
    subprocess.run([*psql, f"CREATE DATABASE {name}"], check=True, capture_output=True)
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True, capture_output=True)


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server while the block runs: `127.0.0.1:<port>`."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


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


def running_ffmpeg_worker(cluster: Cluster) -> int | None:
    """The worker process that has an ffmpeg running, if any."""
    for supervisor in cluster.workers:
        for pid in worker_pids(supervisor):
            for child in children(pid):
                try:
                    if b"ffmpeg" in Path(f"/proc/{child}/cmdline").read_bytes() and is_alive(child):
                        return pid
                except OSError:
                    continue
    return None


def cluster_env(tmp_path: Path, database: str, amqp_url: str, s3_endpoint: str, bucket: str) -> dict[str, str]:
    """The environment of one test's api and workers: this one without its TRANSMUTE_* settings, plus theirs."""
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("TRANSMUTE_")},
        "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "TRANSMUTE_BROKER_URL": amqp_url,
        "TRANSMUTE_DATABASE_URL": database,
        "TRANSMUTE_S3_ENDPOINT": s3_endpoint,
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
        # This test's workers count their instances (heartbeat files, metrics ports) among themselves only.
        "TRANSMUTE_HEARTBEAT_FILE": str(tmp_path / "worker.heartbeat"),
        "TRANSMUTE_METRICS_PORT": str(free_ports(4)),  # the later workers of a test take the next ports
    }


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
        """The api's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        """An HTTP client on the api."""
        return httpx.Client(base_url=self.url, timeout=30)

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        self._log_files.append(log)
        return subprocess.Popen([str(TRANSMUTE), *args], env={**self.env, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    def start_api(self, workers: int = 1) -> None:
        """Start `transmute api` and wait until it answers."""
        self.api_process = self._spawn("api", ["api", "--port", str(self.port), "--workers", str(workers)])
        wait_for(self._api_ready, 60, f"the api to answer (log: {self.logs / 'api.log'})")

    def _api_ready(self) -> bool:
        assert self.api_process is not None and self.api_process.poll() is None, self.log("api")
        try:
            return httpx.get(f"{self.url}/api/formats/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop_api(self) -> None:
        """SIGTERM the api and wait for it to end."""
        assert self.api_process is not None
        stop(self.api_process)
        self.api_process = None

    def start_worker(self, processes: int = 1, threads: int = 1, **env: str) -> subprocess.Popen:
        """Start one more `transmute worker` (with `env` on top of the cluster's) and wait for its processes."""
        name = f"worker{len(self.workers)}"
        process = self._spawn(name, ["worker", "--processes", str(processes), "--threads", str(threads)], env)
        self.workers.append(process)
        wait_for(lambda: len(worker_pids(process)) == processes, 30, f"{name}'s processes")
        return process

    def log(self, name: str) -> str:
        """The output of the process `name` ("api", "worker0"...)."""
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def s3(self) -> Minio:
        """A client of the cluster's S3 server."""
        return Minio(self.s3_endpoint, access_key=S3_KEYS["access"], secret_key=S3_KEYS["secret"], secure=False)

    def objects(self, prefix: str) -> list[str]:
        """The keys under `prefix` in the cluster's bucket, sorted."""
        return sorted(item.object_name for item in self.s3().list_objects(self.bucket, prefix=prefix, recursive=True))

    def close(self) -> None:
        """Stop every process the test started."""
        for process in [self.api_process, *self.workers]:
            if process is not None:
                stop(process)
        for log in self._log_files:
            log.close()
