"""Slow clients against a real `transmute serve`: headers that trickle, an upload that goes quiet, and more
connections than the cap. Raw sockets on 127.0.0.1; the server's deadlines are set to 2 s for the test."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.waiting import wait_for

DEADLINE = 2.0
"""TRANSMUTE_HEADER_TIMEOUT and TRANSMUTE_CLIENT_IDLE_TIMEOUT of the server under test, in seconds."""
GIVE_UP = 30.0
"""How long a test waits for the server to act on a deadline of 2 s before it calls it a failure."""


@pytest.fixture
def server(start_server):
    return start_server(workers=1, env={"TRANSMUTE_HEADER_TIMEOUT": str(DEADLINE),
                                        "TRANSMUTE_CLIENT_IDLE_TIMEOUT": str(DEADLINE)})


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


@contextlib.contextmanager
def connection(port: int) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP) as sock:
        yield sock


def trickle_until_closed(sock: socket.socket, pieces: Iterator[bytes], pace: float = 0.25) -> tuple[bytes, float]:
    """Send a piece every `pace` s until the server closes the connection; return what it said and when."""
    started = time.monotonic()
    answer = b""
    sock.settimeout(pace)
    while time.monotonic() - started < GIVE_UP:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            with contextlib.suppress(OSError):
                sock.sendall(next(pieces))
            continue
        except ConnectionResetError:
            break
        if not data:
            break
        answer += data
    return answer, time.monotonic() - started


def header_lines() -> Iterator[bytes]:
    yield b"GET /api/formats/ HTTP/1.1\r\nHost: test\r\n"
    number = 0
    while True:
        number += 1
        yield f"X-Slow-{number}: {'a' * 10}\r\n".encode()


def formats_status(server) -> int:
    """The status of a GET /api/formats/."""
    return httpx.get(f"{server.url}/api/formats/", timeout=10).status_code


def refusal(server) -> int | None:
    """The status of a GET /api/formats/ that is not a 200; None for a 200."""
    status = formats_status(server)
    return None if status == 200 else status


def read_answer(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


@pytest.mark.parametrize("trickled", [True, False], ids=["headers-trickle", "nothing-sent"])
def test_a_connection_whose_headers_do_not_arrive_in_time_is_closed(server, trickled: bool):
    with connection(port_of(server)) as sock:
        pieces = header_lines() if trickled else iter(lambda: b"", None)
        answer, took = trickle_until_closed(sock, pieces)
    assert took < GIVE_UP, "the server never closed a connection whose headers kept trickling"
    assert took >= DEADLINE * 0.9
    if answer:
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["success"] is False
    assert httpx.get(f"{server.url}/api/formats/", timeout=10).status_code == 200, "others are still served"


def test_an_upload_that_goes_quiet_is_answered_408_and_closed(server):
    with connection(port_of(server)) as sock:
        sock.sendall(b"POST /api/tasks/create/ HTTP/1.1\r\nHost: test\r\n"
                     b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1000000\r\n\r\n"
                     b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
                     + b"\0" * 4096)
        started = time.monotonic()
        answer = read_answer(sock)  # ends when the server closes the connection
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["success"] is False and "sent nothing for 2 s" in body["error"], body
    assert DEADLINE * 0.9 <= took < GIVE_UP


def test_connections_past_the_cap_are_refused_with_503_and_served_again_once_they_close(start_server):
    server = start_server(workers=1, env={"TRANSMUTE_MAX_CONNECTIONS": "3", "TRANSMUTE_HEADER_TIMEOUT": "60"})
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(connection(port_of(server))).sendall(b"GET /api/formats/ HTTP/1.1\r\n")
        refused = wait_for(lambda: refusal(server), GIVE_UP, "a request past the cap to be refused", interval=0.05)
        assert refused == 503, refused
    wait_for(lambda: formats_status(server) == 200, GIVE_UP, "a 200 once the held connections closed", interval=0.05)
