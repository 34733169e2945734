"""The embedded app (Litestar + Dramatiq worker threads + SQLite + files) on a data folder, under a TestClient."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from transmute.cli.embedded import create_embedded_app
from transmute.store import TaskStore

ISOLATED_ENV = ("TRANSMUTE_MAX_UPLOAD_MB", "TRANSMUTE_DATABASE_URL", "TRANSMUTE_BROKER_URL", "TRANSMUTE_S3_ENDPOINT",
                "TRANSMUTE_DATA_DIR", "TRANSMUTE_PLUGINS", "TRANSMUTE_API_KEYS", "TRANSMUTE_RATE_LIMIT")
"""Settings from the environment that would make a test app something else than embedded-on-a-folder."""


@contextlib.contextmanager
def embedded_client(data_dir: Path, *, threads: int = 2, env: dict[str, str] | None = None) -> Iterator[TestClient]:
    """A TestClient over a fresh embedded app on `data_dir`, with `env` set while the app is built."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ISOLATED_ENV:
            patch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        app = create_embedded_app(data_dir, threads=threads)
    with TestClient(app, timeout=30) as client:
        yield client


def store_of(client: TestClient) -> TaskStore:
    """The task store of the app under `client`."""
    return client.app.state.services.store


def run_in_app(client: TestClient, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await `function(*args, **kwargs)` on the app's event loop (where its task store lives)."""
    return client.blocking_portal.call(functools.partial(function, *args, **kwargs))
