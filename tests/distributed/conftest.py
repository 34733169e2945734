"""Distributed mode against real components (the fixtures of tests/conftest.py): `transmute api` and
`transmute worker` as subprocesses. Clips are tiny lavfi videos served over HTTP from 127.0.0.1 (so
TRANSMUTE_ALLOW_PRIVATE_URLS is on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import serving_folder


@pytest.fixture(scope="session")
def clip_server(cluster_clips: dict[str, Path]) -> Iterator[str]:
    """The cluster clips over HTTP: `{base}/one.mp4`..."""
    with serving_folder(cluster_clips["one"].parent) as base:
        yield base
