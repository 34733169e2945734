"""Operations tests: health routes, metrics (gateway and worker), JSON logs, the worker's heartbeat and its
drain on SIGTERM.

Routes are hit on the embedded app under Litestar's TestClient; the worker is a real `transmute worker` (with a
real `transmute api`) on this machine's RabbitMQ and PostgreSQL and a moto S3, through the fixtures of
tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.support.embedded import embedded_client
from tests.support.media import make_clip


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160x120, 1 s: converts in well under a second."""
    return make_clip(tmp_path_factory.mktemp("ops-media") / "clip.mp4", "testsrc2=size=160x120:rate=10:duration=1")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TestClient]:
    """A fresh embedded app on its own data folder."""
    with embedded_client(tmp_path / "data") as client:
        yield client
