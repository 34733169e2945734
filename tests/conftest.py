"""Fixtures shared by several test folders, built from tests/support: media clips, a real `transmute serve`,
and the real components of distributed mode."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import cluster as components
from tests.support.media import make_cluster_clips, make_media_clips
from tests.support.plugins import BROKEN_PLUGINS, EXAMPLE, pip_install, write_plugin_project
from tests.support.servers import Server

# ------------------------------------------------------------------------------------------ media


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Named inputs: `video`, `ramp`, `small`, `audio`, `text`, `empty` (see make_media_clips)."""
    return make_media_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="session")
def cluster_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`one` (160x120, 1 s), `two` (160x120, 2 s), `long` (320x240, 20 s: seconds of work to convert)."""
    return make_cluster_clips(tmp_path_factory.mktemp("cluster-clips"))


# ------------------------------------------------------------------------------------------ transmute serve


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
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


# ------------------------------------------------------------------------------------------ distributed mode


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server: `127.0.0.1:<port>`."""
    with components.moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of its own for this session; its amqp:// URL."""
    with components.rabbitmq_vhost() as url:
        yield url


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test; its SQLAlchemy URL."""
    with components.postgres_database() as url:
        yield url


@pytest.fixture
def cluster(tmp_path: Path, database: str, rabbitmq_vhost: str, s3_server: str) -> Iterator[components.Cluster]:
    """The environment of one distributed transmute (nothing started yet: the test starts what it needs)."""
    components.delete_queues(rabbitmq_vhost)
    bucket = f"transmute-{uuid.uuid4().hex[:10]}"
    logs = tmp_path / "logs"
    logs.mkdir()
    running = components.Cluster(env=components.cluster_env(tmp_path, database, rabbitmq_vhost, s3_server, bucket),
                                 logs=logs, s3_endpoint=s3_server, bucket=bucket)
    running.s3().make_bucket(bucket)  # as an operator would: `transmute api` and `worker` need it to exist
    yield running
    running.close()
    if components.rabbitmq_up():
        components.delete_queues(rabbitmq_vhost)


# ------------------------------------------------------------------------------------------ third-party plugins


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder examples/transmute-plugin-thumbs is installed into (put it on a process's PYTHONPATH)."""
    folder = tmp_path_factory.mktemp("plugin-thumbs")
    return pip_install(EXAMPLE, folder / "site", folder / "build")


@pytest.fixture(scope="session")
def broken_plugins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each of BROKEN_PLUGINS installed into a folder of its own, by name."""
    sites = {}
    for name, code in BROKEN_PLUGINS.items():
        folder = tmp_path_factory.mktemp(f"plugin-{name}")
        project = write_plugin_project(folder / "project", name, code)
        sites[name] = pip_install(project, folder / "site", folder / "build")
    return sites
