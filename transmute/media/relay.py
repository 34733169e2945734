"""An ffmpeg run whose raw frames Python reads, one at a time, while it runs (run_read).

The run gets its end of an os.pipe as `pipe:N`. Whatever stops one side stops the other: a run that fails or
times out sets the shared stop, which Python's reading obeys; Python that fails (or a cancel) stops the run like a
cancel, and its end of the pipe is closed, so ffmpeg meets a closed pipe. The error raised is the run's own (not
the cancel Python's failure caused), else the one raised in Python; ConversionCancelled when the conversion was
cancelled.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from transmute.core.errors import ConversionCancelled, MediaError
from transmute.media.run import run_ffmpeg

CANCEL_POLL = 0.1
"""Seconds between two looks at the conversion's cancel, to pass it on to the run."""
PIPE_BYTES = 1 << 20
"""The pipe's buffer (Linux's default cap for a process's pipes; the default 64 KiB is a twelfth of a 480x394
frame, and each fill is a wake-up of reader and writer)."""


def run_read(first: Callable[[str], Any], read: Callable[[Iterable[bytearray]], None], *, frame_bytes: int,
             cancel: threading.Event, first_run: dict[str, Any]) -> None:
    """Run `first(url)` (an ffmpeg output node writing raw frames of `frame_bytes` to `url`) while `read` is
    given its frames (each read into the same buffer as the next: it keeps a copy, not the frame).
    `first_run`: run_ffmpeg's other arguments (cancel excepted)."""
    from_first, to_python = _pipe()
    stop = threading.Event()
    run_errors: list[BaseException] = []
    read_errors: list[BaseException] = []

    def run() -> None:
        try:
            run_ffmpeg(first(f"pipe:{to_python}"), cancel=stop, pass_fds=(to_python,), **first_run)
        except BaseException as error:  # raised in the caller's thread, below
            run_errors.append(error)
            stop.set()
        finally:
            os.close(to_python)  # Python's reading then sees the end (ffmpeg's own copy closed when it exited)

    def pass_on_cancel() -> None:
        while not stop.is_set():
            if cancel.wait(CANCEL_POLL):
                stop.set()

    with open(from_first, "rb", buffering=0) as reader:
        runner = threading.Thread(target=run, name="ffmpeg-read")
        for thread in (runner, threading.Thread(target=pass_on_cancel, name="ffmpeg-read-cancel", daemon=True)):
            thread.start()
        try:
            read(_frames_read(reader, frame_bytes, stop))
        except BaseException as error:  # raised below, once the run ended
            read_errors.append(error)
            stop.set()
        finally:
            reader.close()
        runner.join()
    stop.set()  # ends pass_on_cancel
    if cancel.is_set():
        raise ConversionCancelled("The conversion was cancelled.")
    own = [error for error in run_errors if not isinstance(error, ConversionCancelled)]
    for error in own or read_errors or run_errors:
        raise error


def _pipe() -> tuple[int, int]:
    """A pipe of PIPE_BYTES where the system allows it (Linux), else of its default size."""
    reader, writer = os.pipe()
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return reader, writer


def _frames_read(reader, frame_bytes: int, stop: threading.Event) -> Iterator[bytearray]:
    """The frames of `frame_bytes` `reader` gives, in one buffer reused for each, until its end or `stop`."""
    frame = bytearray(frame_bytes)
    view = memoryview(frame)
    while not stop.is_set():
        got = 0
        while got < frame_bytes:
            count = reader.readinto(view[got:])
            if not count:
                break
            got += count
        if got == 0:
            return
        if got < frame_bytes:
            raise MediaError("ffmpeg stopped in the middle of a frame.")
        yield frame
