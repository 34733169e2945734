"""Free ports and quiet HTTP servers on 127.0.0.1, each in a thread of the test process."""

from __future__ import annotations

import contextlib
import functools
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that does not log each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder's files without logging each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run a threading HTTP server with `handler` on 127.0.0.1 while the block runs; yield its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="test-http-server").start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def serving_folder(folder: Path) -> contextlib.AbstractContextManager[str]:
    """Serve the files of `folder` over HTTP on 127.0.0.1 while the block runs; yield its base URL."""
    return serving(functools.partial(QuietFileHandler, directory=str(folder)))
