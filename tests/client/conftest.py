"""transmute.client against a real `transmute serve` on 127.0.0.1 (one per module), clips served over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import serving_folder
from tests.support.servers import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`transmute serve` with one worker thread (so a second task waits in the queue), private URLs allowed."""
    folder = tmp_path_factory.mktemp("client-server")
    running = Server(data_dir=folder / "data", log_path=folder / "serve.log", workers=1)
    running.start()
    yield running
    running.kill_group()


@pytest.fixture(scope="module")
def clip_urls(clips: dict[str, Path]) -> Iterator[dict[str, str]]:
    """The URL of each clip (`small`, `text`...), served by a thread on 127.0.0.1."""
    with serving_folder(clips["small"].parent) as base:
        yield {name: f"{base}/{path.name}" for name, path in clips.items()}
