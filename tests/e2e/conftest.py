"""`transmute serve` as a real process on a free port (the `start_server` fixture of tests/conftest.py),
driven over HTTP (httpx and curl)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.media import E2EMedia
from tests.support.net import serving_folder


@pytest.fixture(scope="session")
def e2e_media(tmp_path_factory: pytest.TempPathFactory) -> E2EMedia:
    """The clips of these tests (see E2EMedia)."""
    return E2EMedia.make(tmp_path_factory.mktemp("e2e-media"))


@pytest.fixture(scope="session")
def clip_server(e2e_media: E2EMedia) -> Iterator[str]:
    """Base URL of a local HTTP server (a thread on 127.0.0.1) serving the clips."""
    with serving_folder(e2e_media.folder) as base:
        yield base
