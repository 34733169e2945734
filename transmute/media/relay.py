"""ffmpeg runs and Python passing frames, one at a time, while they run: frames Python makes fed to a run
(run_fed), the frames of one run rewritten on their way to another (run_relayed; on two cores the second run's
work hides behind the first's, and nothing is written to disk between them), or read by Python (run_read).

Each run gets its end of an os.pipe as `pipe:N`. Whatever stops one part stops the others: a run that fails
or times out sets the shared stop, which the other run obeys like a cancel; Python then closes its ends, so
the first meets a closed pipe and the second the end of its input. The error raised is the first run's or the
second's own (not the cancel the stop caused in the other), else the one raised in Python; ConversionCancelled
when the conversion was cancelled.
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

Frame = bytes | bytearray | memoryview
CANCEL_POLL = 0.1
"""Seconds between two looks at the conversion's cancel, to pass it on to the runs."""
PIPE_BYTES = 1 << 20
"""Each pipe's buffer (Linux's default cap for a process's pipes; the default 64 KiB is a twelfth of a 480x394
frame, and each fill is a wake-up of reader and writer)."""


def run_fed(frames: Iterable[Frame], second: Callable[[str], Any], *, cancel: threading.Event,
            second_run: dict[str, Any]) -> None:
    """Run `second(url)` (an ffmpeg output node reading raw frames from `url`), fed the `frames` Python yields
    meanwhile. `second_run`: run_ffmpeg's other arguments (cancel excepted)."""
    from_python, to_second = _pipe()
    _run_joined(lambda stop: _write_frames(frames, to_second, stop), [(second, from_python, second_run)],
                cancel=cancel, after_feeding=lambda: os.close(to_second))


def run_relayed(first: Callable[[str], Any], second: Callable[[str], Any],
                relay: Callable[[Iterable[bytearray]], Iterable[Frame]], *, frame_bytes: int,
                cancel: threading.Event, first_run: dict[str, Any], second_run: dict[str, Any]) -> None:
    """Run `first(url)` (an ffmpeg output node writing raw frames of `frame_bytes` to `url`) and `second(url)`
    (one reading from `url`) at once; the frames go through `relay`, whose results (in order; a frame it is
    given is read into the same buffer as the next, so it keeps a copy, not the frame) are what the second
    reads. `first_run` and `second_run`: run_ffmpeg's other arguments for each (cancel excepted)."""
    from_first, to_relay = _pipe()
    from_python, to_second = _pipe()
    with open(from_first, "rb", buffering=0) as reader:
        def after_feeding() -> None:
            reader.close()
            os.close(to_second)

        _run_joined(lambda stop: _write_frames(relay(_frames_read(reader, frame_bytes, stop)), to_second, stop),
                    [(second, from_python, second_run), (first, to_relay, first_run)], cancel=cancel,
                    after_feeding=after_feeding)


def run_read(first: Callable[[str], Any], read: Callable[[Iterable[bytearray]], None], *, frame_bytes: int,
             cancel: threading.Event, first_run: dict[str, Any]) -> None:
    """Run `first(url)` (an ffmpeg output node writing raw frames of `frame_bytes` to `url`) while `read` is
    given its frames (each read into the same buffer as the next: it keeps a copy, not the frame).
    `first_run`: run_ffmpeg's other arguments (cancel excepted)."""
    from_first, to_python = _pipe()
    with open(from_first, "rb", buffering=0) as reader:
        _run_joined(lambda stop: read(_frames_read(reader, frame_bytes, stop)), [(first, to_python, first_run)],
                    cancel=cancel, after_feeding=reader.close)


def _run_joined(feed: Callable[[threading.Event], None], runs: list[tuple[Callable[[str], Any], int, dict[str, Any]]],
                *, cancel: threading.Event, after_feeding: Callable[[], None]) -> None:
    """The ffmpeg `runs` (each its node, the pipe end it uses, its options) while Python `feed(stop)`s them
    (reading from one, writing to another); `after_feeding` is called once the feeding ended, however it
    ended, and closes Python's pipe ends."""
    stop = threading.Event()
    run_errors: list[BaseException] = []
    feed_errors: list[BaseException] = []

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

    threads = [threading.Thread(target=run, args=one, name=f"ffmpeg-joined-{index}")
               for index, one in enumerate(runs)]
    for thread in [*threads, threading.Thread(target=pass_on_cancel, name="ffmpeg-joined-cancel", daemon=True)]:
        thread.start()
    try:
        feed(stop)
    except BaseException as error:  # raised below, once the runs ended
        feed_errors.append(error)
        stop.set()
    finally:
        after_feeding()
    for thread in threads:
        thread.join()
    stop.set()  # ends pass_on_cancel
    if cancel.is_set():
        raise ConversionCancelled("The conversion was cancelled.")
    own = [error for error in run_errors if not isinstance(error, ConversionCancelled)]
    for error in own or feed_errors or run_errors:
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


def _write_frames(frames: Iterable[Frame], sink: int, stop: threading.Event) -> None:
    for frame in frames:
        if stop.is_set():
            return
        view = memoryview(frame).cast("B")
        written = 0
        while written < len(view):
            with contextlib.suppress(InterruptedError):
                written += os.write(sink, view[written:])
