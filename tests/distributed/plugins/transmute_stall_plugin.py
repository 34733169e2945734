"""A throw-away format plugin for the stall tests: converting to `stall` runs a real ffmpeg that stops moving.

ffmpeg decodes the source into a named pipe that is read for a few frames and then no more: once the pipe's
buffer is full, ffmpeg waits, its progress stands still (as with a source on a network share that stopped
answering), until the run is cancelled. Found the ordinary way, like transmute_crash_plugin.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.media.run import run_ffmpeg

READ_FRAMES = 40
"""Frames read from the pipe before the reading stops."""


def _read_then_stop(path: Path, limit: int, cancel: threading.Event) -> None:
    # Opened without waiting for a writer; ffmpeg's open for writing then succeeds at once.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        got = 0
        while got < limit and not cancel.is_set():
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                chunk = b""
            got += len(chunk)
            if not chunk:
                cancel.wait(0.01)
        cancel.wait(600)  # the pipe stays open, unread: ffmpeg blocks on its next write
    finally:
        os.close(fd)


class StallFormat(OutputFormat):
    name = "stall"
    extension = "raw"
    mime_type = "application/octet-stream"
    description = "Test only: a conversion whose ffmpeg stops making progress a few frames in."

    def convert(self, job: ConversionJob) -> None:
        assert job.work_dir is not None
        pipe = job.work_dir / "frames.pipe"
        os.mkfifo(pipe)
        frame_bytes = job.media.width * job.media.height * 3
        reader = threading.Thread(target=_read_then_stop, args=(pipe, READ_FRAMES * frame_bytes, job.cancel),
                                  daemon=True)
        reader.start()
        try:
            run_ffmpeg(["-y", "-i", str(job.input_path), "-f", "rawvideo", "-pix_fmt", "rgb24", str(pipe)],
                       expected_duration=job.media.duration, limits=job.limits, progress=job.progress,
                       cancel=job.cancel, timeout=job.timeout)
        finally:
            reader.join(5)


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [StallFormat()]
