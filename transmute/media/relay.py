"""Two ffmpeg runs joined through Python: the frames the first writes pass, one at a time, through a function
into the second, both running at once (on two cores the second's work hides behind the first's, and nothing is
written to disk between them).

Each run gets its end of an os.pipe as `pipe:N`. Whatever stops one part stops the others: a run that fails
or times out sets the shared stop, which the other run obeys like a cancel; the relay then closes its ends, so
the first meets a closed pipe and the second the end of its input. The error raised is the first run's or the
second's own (not the cancel the stop caused in the other), else the relay's; ConversionCancelled when the
conversion was cancelled.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

from transmute.core.errors import ConversionCancelled, MediaError
from transmute.media.run import run_ffmpeg

CANCEL_POLL = 0.1
"""Seconds between two looks at the conversion's cancel, to pass it on to both runs."""


def run_relayed(first: Callable[[str], Any], second: Callable[[str], Any], relay: Callable[[bytearray], None], *,
                frame_bytes: int, cancel: threading.Event, first_run: dict[str, Any],
                second_run: dict[str, Any]) -> None:
    """Run `first(url)` (an ffmpeg output node writing raw frames of `frame_bytes` to `url`) and `second(url)`
    (one reading them from `url`) at once, each frame rewritten in place by `relay` on its way. `first_run` and
    `second_run`: run_ffmpeg's other arguments for each (cancel excepted)."""
    stop = threading.Event()
    run_errors: list[BaseException] = []
    relay_errors: list[BaseException] = []
    from_first, to_relay = os.pipe()
    from_relay, to_second = os.pipe()

    def run(build: Callable[[str], Any], fd: int, options: dict[str, Any]) -> None:
        try:
            run_ffmpeg(build(f"pipe:{fd}"), cancel=stop, pass_fds=(fd,), **options)
        except BaseException as error:  # raised in the caller's thread, below
            run_errors.append(error)
            stop.set()
        finally:
            os.close(fd)  # the pipe's other end then sees its end (ffmpeg's own copy closed when it exited)

    def pass_on_cancel() -> None:
        while not stop.is_set():
            if cancel.wait(CANCEL_POLL):
                stop.set()

    threads = [threading.Thread(target=run, args=(first, to_relay, first_run), name="ffmpeg-relay-first"),
               threading.Thread(target=run, args=(second, from_relay, second_run), name="ffmpeg-relay-second"),
               threading.Thread(target=pass_on_cancel, name="ffmpeg-relay-cancel", daemon=True)]
    for thread in threads:
        thread.start()
    try:
        _relay_frames(from_first, to_second, relay, frame_bytes, stop)
    except BaseException as error:  # raised below, once both runs ended
        relay_errors.append(error)
        stop.set()
    finally:
        os.close(from_first)
        os.close(to_second)
    for thread in threads[:2]:
        thread.join()
    stop.set()  # ends pass_on_cancel
    if cancel.is_set():
        raise ConversionCancelled("The conversion was cancelled.")
    own = [error for error in run_errors if not isinstance(error, ConversionCancelled)]
    for error in own or relay_errors or run_errors:
        raise error


def _relay_frames(source: int, sink: int, relay: Callable[[bytearray], None], frame_bytes: int,
                  stop: threading.Event) -> None:
    frame = bytearray(frame_bytes)
    view = memoryview(frame)
    with open(source, "rb", buffering=0, closefd=False) as reader:
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
            relay(frame)
            written = 0
            while written < frame_bytes:
                with contextlib.suppress(InterruptedError):
                    written += os.write(sink, view[written:])
