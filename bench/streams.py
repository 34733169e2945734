"""Figure 10 (issue 15): what open `/events/` streams cost a gateway process.

The streams are plain sockets in a thread of their own (an asyncio loop): each sends the request, reads the
response head and the first event, then stays open, reading whatever comes (heartbeats), until released. They
cost the measuring side next to nothing, so wrk's numbers show the gateway's cost alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit


async def _one_stream(host: str, port: int, path: str, opened: asyncio.Queue[bool], release: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        await opened.put(False)
        return
    try:
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
                         .encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            ok = head.startswith(b"HTTP/1.1 200")
            if ok:
                await reader.readuntil(b"\r\n\r\n")  # the first event: the task's current state
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            ok = False
        await opened.put(ok)
        while ok and not release.is_set():
            reading = asyncio.ensure_future(reader.read(4096))
            waiting = asyncio.ensure_future(release.wait())
            done, _ = await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
            reading.cancel()
            waiting.cancel()
            if reading in done and not reading.cancelled() and not reading.result():
                break  # the server ended the stream
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


@contextlib.contextmanager
def open_streams(url: str, count: int, timeout: float = 120) -> Iterator[int]:
    """`count` event streams on `url` while the block runs; gives how many were answered 200."""
    parts = urlsplit(url)
    loop = asyncio.new_event_loop()
    release = asyncio.Event()
    ready = threading.Event()
    answered: list[int] = []

    async def main() -> None:
        opened: asyncio.Queue[bool] = asyncio.Queue()
        streams = [asyncio.ensure_future(_one_stream(parts.hostname or "127.0.0.1", parts.port or 80, parts.path,
                                                     opened, release)) for _ in range(count)]
        results = [await opened.get() for _ in range(count)]
        answered.append(sum(results))
        ready.set()
        await asyncio.gather(*streams, return_exceptions=True)

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    try:
        if not ready.wait(timeout):
            raise TimeoutError(f"{count} event streams did not open within {timeout:g} s")
        yield answered[0]
    finally:
        loop.call_soon_threadsafe(release.set)
        thread.join(timeout)
        loop.close()
