"""Operations tests: health routes, metrics (gateway and worker), JSON logs, the worker's heartbeat and its
drain on SIGTERM.

Routes are hit on the embedded app under Litestar's TestClient (tests/api/support.py); the worker is a real
`transmute worker` (with a real `transmute api`) on this machine's RabbitMQ and PostgreSQL and a moto S3,
through the fixtures of tests/distributed/conftest.py, imported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.support import embedded_client, make_clip
from tests.distributed.conftest import (  # noqa: F401  (fixtures)
    clip_server,
    clips,
    cluster,
    database,
    rabbitmq_vhost,
    s3_server,
)
from tests.e2e.conftest import start_server  # noqa: F401  (fixture: a real `transmute serve`)


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160x120, 1 s: converts in well under a second."""
    return make_clip(tmp_path_factory.mktemp("ops-media") / "clip.mp4", "testsrc2=size=160x120:rate=10:duration=1")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TestClient]:
    """A fresh embedded app on its own data folder."""
    with embedded_client(tmp_path / "data") as client:
        yield client


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called `name` in a Prometheus text page: {sorted labels: value}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels include `labels` (summed over the others); 0 if none."""
    return sum(value for key, value in samples(text, name).items() if set(labels.items()) <= set(key))
