"""A TCP proxy on 127.0.0.1 whose target can be made unreachable and reachable again (an outage on demand)."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.net import free_port


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` makes the target unreachable (connections refused,
    open ones dropped) until `restore()`."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_port()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    @property
    def address(self) -> str:
        """Where to connect instead of the target: `127.0.0.1:<port>`."""
        return f"127.0.0.1:{self.port}"

    def restore(self) -> None:
        """Listen again: new connections reach the target."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and drop the open connections: the target looks unreachable."""
        listener, self._listener = self._listener, None
        if listener is not None:
            self._close(listener)  # shutdown() wakes the thread blocked in accept(); close() alone would not
        with self._lock:
            for sock in list(self._open):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._close(source)
            self._close(sink)
