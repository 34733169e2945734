"""A forwarding HTTP proxy on 127.0.0.1 in front of a real transmute server, that can answer 503 first and play
the task event stream (`GET /api/tasks/{id}/events/`) in one of three ways, to test what a client does."""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import httpx

from tests.support.net import QuietHandler, serving

EVENTS_ROUTE = re.compile(r"^/api/tasks/([^/]+)/events/?$")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}
FINAL = ("done", "failed", "cancelled")

EventsMode = Literal["forward", "absent", "contract"]
"""forward: the server's own route; absent: 404, as a server without the route answers; contract: a stream the
proxy makes from the server's status, as the common contract of the events route describes it."""


@dataclass
class ProxyState:
    """What the proxy does, and what it saw."""

    target: str
    unavailable: int = 0
    """Requests to answer with 503 and `Retry-After: 0` before forwarding any."""
    events: EventsMode = "forward"
    cut_streams: int = 0
    """Contract streams to cut after their first event (as a dropped connection does)."""
    last_event_ids: list[str | None] = field(default_factory=list)
    """The Last-Event-ID header of each events request, in order (None where there was none)."""
    requests: Counter = field(default_factory=Counter)
    """`METHOD /path` of each request received (the 503s too)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> int:
        """How many requests had `what` in their `METHOD /path`."""
        with self.lock:
            return sum(number for key, number in self.requests.items() if what in key)


class ProxyHandler(QuietHandler):
    protocol_version = "HTTP/1.1"
    state: ProxyState

    def __init__(self, *args, state: ProxyState, **kwargs) -> None:
        self.state = state
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.state.lock:
            self.state.requests[f"{self.command} {path}"] += 1
            refuse = self.state.unavailable > 0
            self.state.unavailable -= refuse
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if refuse:
            return self._answer(503, b'{"success": false, "error": "Briefly away; retry."}', {"Retry-After": "0"})
        events = EVENTS_ROUTE.match(path)
        if events and self.state.events == "absent":
            return self._answer(404, b'{"success": false, "error": "No such route."}')
        if events and self.state.events == "contract":
            with self.state.lock:
                self.state.last_event_ids.append(self.headers.get("last-event-id"))
                cut = self.state.cut_streams > 0
                self.state.cut_streams -= cut
            return self._play_events(events.group(1), seen=int(self.headers.get("last-event-id") or 0), cut=cut)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_HEADERS}
        with httpx.Client(base_url=self.state.target, timeout=60) as client, \
                client.stream(self.command, self.path, content=body, headers=headers) as answer:
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in answer.iter_raw():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _play_events(self, task_id: str, *, seen: int, cut: bool) -> None:
        """The contract: a `progress` event per change of the status JSON, then the final one, then the end; ids
        go on from `seen` (the client's Last-Event-ID). `cut`: the connection drops after the first event."""
        with httpx.Client(base_url=self.state.target, timeout=30) as client:
            first = client.get(f"/api/tasks/{task_id}/status/")
            if first.status_code != 200:
                return self._answer(first.status_code, first.content)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            sent, seq, deadline = None, seen, time.monotonic() + 120
            answer = first
            while time.monotonic() < deadline:
                status = answer.json()
                if (status["status"], status["progress"]) != sent:
                    seq += 1
                    sent = (status["status"], status["progress"])
                    name = status["status"] if status["status"] in FINAL else "progress"
                    self.wfile.write(f"id: {seq}\nevent: {name}\ndata: {answer.text}\n\n".encode())
                    self.wfile.flush()
                    if name in FINAL or cut:
                        return
                time.sleep(0.05)
                answer = client.get(f"/api/tasks/{task_id}/status/")


@contextlib.contextmanager
def api_proxy(target: str, *, unavailable: int = 0, events: EventsMode = "forward",
              cut_streams: int = 0) -> Iterator[tuple[str, ProxyState]]:
    """A proxy to `target` while the block runs: its base URL, and its state (change it, read its counts)."""
    state = ProxyState(target=target, unavailable=unavailable, events=events, cut_streams=cut_streams)
    with serving(functools.partial(ProxyHandler, state=state)) as base:
        yield base, state

