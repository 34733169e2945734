"""A webhook receiver on 127.0.0.1 (a thread of the test process): records each delivery, answers as scripted,
and checks signatures the way a receiver would, with the `standardwebhooks` library."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.support.net import QuietHandler, serving

SECRET = "whsec_" + base64.b64encode(b"transmute test webhook secret 32").decode()
"""The signing secret the tests configure (TRANSMUTE_WEBHOOK_SECRET) and verify with."""

HOLD = "hold"
"""A scripted answer: keep the request open until `Receiver.release` (a receiver slower than any timeout)."""


@dataclass
class Delivery:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    received: float = field(default_factory=time.monotonic)

    def verified(self, secret: str = SECRET) -> Any:
        """The JSON body, once `standardwebhooks` says its signature is right (it raises otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What the receiver got, and what it answers next: status codes or HOLD, in order; then `then`."""

    url: str = ""
    answers: list[int | str] = field(default_factory=list)
    then: int = 200
    deliveries: list[Delivery] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, delivery: Delivery) -> int | str:
        with self._lock:
            self.deliveries.append(delivery)
            return self.answers.pop(0) if self.answers else self.then

    def release(self) -> None:
        """Let every held request end (without an answer)."""
        self.released.set()

    def of_task(self, task_id: str) -> list[Delivery]:
        """The deliveries about one task (its id is in every body)."""
        with self._lock:
            return [delivery for delivery in self.deliveries if delivery.json.get("task_id") == task_id]


@contextlib.contextmanager
def receiving(answers: list[int | str] | None = None, *, then: int = 200) -> Iterator[Receiver]:
    """Run a webhook receiver while the block runs; its URL is `receiver.url` (a path under /hooks)."""
    receiver = Receiver(answers=list(answers or []), then=then)

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            delivery = Delivery(self.path, {name.lower(): value for name, value in self.headers.items()},
                                self.rfile.read(length))
            answer = receiver.record(delivery)
            if answer == HOLD:
                receiver.released.wait(60)
                self.close_connection = True
                return
            self.send_response(int(answer))
            self.send_header("content-length", "0")
            self.end_headers()

    with serving(Handler) as base:
        receiver.url = f"{base}/hooks"
        try:
            yield receiver
        finally:
            receiver.release()
