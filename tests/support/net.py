"""Free ports and quiet HTTP servers on 127.0.0.1, each in a thread of the test process."""

from __future__ import annotations

import contextlib
import functools
import http.server
import random
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port that nothing uses right now, for a server a test starts in another process (see PORT_RUNS)."""
    return free_ports(1)


PORT_RUNS = range(20_000, 32_000)
"""Where free ports are looked for: below Linux's ephemeral ports (32768 up), which outgoing connections take at
any time (a port the kernel once gave as free was an api connection's own port when the api came to bind it)."""


def free_ports(count: int) -> int:
    """The first of `count` consecutive TCP ports that nothing uses right now, for a server whose later
    instances take the next ones (a second worker on a host serves its metrics on the port after the first's)."""
    rng = random.Random()
    while True:
        base = rng.randrange(PORT_RUNS.start, PORT_RUNS.stop - count)
        if all(_bindable(port) for port in range(base, base + count)):
            return base


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that does not log each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder's files without logging each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    """A test server that takes a client leaving mid-answer (transmute stopping a download past its limit) as the
    test meant it, without printing it to stderr; any other error in a handler is still printed."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serving(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run a threading HTTP server with `handler` on 127.0.0.1 while the block runs; yield its base URL."""
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="test-http-server").start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def serving_folder(folder: Path) -> contextlib.AbstractContextManager[str]:
    """Serve the files of `folder` over HTTP on 127.0.0.1 while the block runs; yield its base URL."""
    return serving(functools.partial(QuietFileHandler, directory=str(folder)))
