"""A create request from what the caller hands over: a path, an open binary file, or a URL."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from transmute.client.protocol import TASKS

Source = str | os.PathLike | IO[bytes]
"""A video to convert: a path (str or Path), an open binary file, or an http(s):// URL (str)."""
UploadProgress = Callable[[int, int | None], None]
"""Called as an upload goes: bytes sent so far, and the total (None when unknown)."""


def is_url(source: Any) -> bool:
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def form_value(value: Any) -> str:
    """An option as a multipart field: booleans as true/false, the rest as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class CountingReader:
    """A file read through this reports each chunk read (httpx reads a multipart file in 64 KiB chunks)."""

    def __init__(self, file: IO[bytes], progress: UploadProgress) -> None:
        self._file = file
        self._progress = progress
        self._sent = 0
        self._total: int | None = None
        with contextlib.suppress(OSError, AttributeError, ValueError):
            start = file.tell()
            self._total = file.seek(0, os.SEEK_END) - start
            file.seek(start)

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._sent += len(chunk)
        self._progress(self._sent, self._total)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._file.seek(offset, whence)
        if whence == os.SEEK_SET and offset == 0:
            self._sent = 0  # sent again from the start (a retried create)
        return position

    def tell(self) -> int:
        return self._file.tell()


@contextlib.contextmanager
def create_request(source: Source, options: dict[str, Any], *, filename: str | None = None,
                   progress: UploadProgress | None = None) -> Iterator[dict[str, Any]]:
    """The keyword arguments of httpx's build_request for a create: JSON for a URL, multipart for a file.

    A path is opened for the time of the block; a file object is read from its start (httpx rewinds it, so a
    create sent again after a 503 sends the whole file again).
    """
    options = {name: value for name, value in options.items() if value is not None}
    url = f"{TASKS}/create/"
    if is_url(source):
        yield {"method": "POST", "url": url, "json": {"url": source, **options}}
        return
    with contextlib.ExitStack() as stack:
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            file: IO[bytes] = stack.enter_context(path.open("rb"))
            name = filename or path.name
        elif hasattr(source, "read"):
            file = source
            name = filename or Path(str(getattr(source, "name", "") or "upload")).name
        else:
            raise TypeError(f"create takes a path, an open binary file or an http(s) URL; got {type(source).__name__}.")
        body: Any = CountingReader(file, progress) if progress is not None else file
        yield {"method": "POST", "url": url, "files": {"file": (name, body, None)},
               "data": {name: form_value(value) for name, value in options.items()}}
