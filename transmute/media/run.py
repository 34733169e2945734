"""Run ffmpeg to completion (FfmpegRun): progress, cancel, timeout, and the stops its stderr calls for."""

from __future__ import annotations

import collections
import contextlib
import math
import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import ffmpeg

from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.formats import ConversionLimits
from transmute.media.explain import explain_ffmpeg_error
from transmute.media.process import child_options, exit_waiter, ffmpeg_program, kill_group
from transmute.media.user_warnings import warn_if_short
from transmute.media.verdict import StderrVerdict

POLL_INTERVAL = 0.1
"""Seconds between two checks of cancel, timeout and progress while ffmpeg runs (cancel is seen within it)."""
STDERR_TAIL_LINES = 40
STDERR_LINE_CHARS = 400


def ffmpeg_arguments(stream_or_args: Any) -> list[str]:
    """The ffmpeg argument list (without the program name) for an ffmpeg-python node or a list."""
    if isinstance(stream_or_args, (list, tuple)):
        args = [str(arg) for arg in stream_or_args]
    else:
        args = [str(arg) for arg in ffmpeg.compile(stream_or_args)]
    if args and os.path.basename(args[0]) == "ffmpeg":
        args = args[1:]
    return args


class _Stall:
    """Progress for the part of a run where ffmpeg's output clock stands still (reverse, boomerang).

    ffmpeg reports nothing until its first output frame exists; a graph that must see every frame first
    is silent meanwhile. Progress then creeps towards `share` of the span along 1 - exp(-2t/estimate),
    so it moves and never claims the work done; once the clock runs, it takes over from where the
    creep stopped.
    """

    def __init__(self, estimate: float, share: float) -> None:
        self.estimate = max(estimate, 0.1)
        self.share = min(max(share, 0.0), 0.99)

    def fraction(self, elapsed: float) -> float:
        return self.share * (1.0 - math.exp(-2.0 * elapsed / self.estimate))


class _ProgressReader:
    """ffmpeg's `-progress` stream, read in a thread of its own; the run's thread only reads its attributes."""

    def __init__(self) -> None:
        self.out_time = -1.0
        """Seconds of output written (ffmpeg's clock); -1 before the first report of it."""
        self.frames = -1
        """Frames handed to the encoder (ffmpeg's `frame=`); -1 before the first report of it."""
        self.first_report_at: float | None = None

    def read(self, pipe: IO[bytes]) -> None:
        for raw in iter(lambda: pipe.readline(8192), b""):
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key == "out_time_us":
                with contextlib.suppress(ValueError):  # "N/A" before the first frame
                    self.out_time = max(self.out_time, int(value) / 1e6)
            elif key == "frame":
                with contextlib.suppress(ValueError):
                    self.frames = max(self.frames, int(value))
            elif key == "progress" and self.first_report_at is None:
                self.first_report_at = time.monotonic()


class _StderrReader:
    """ffmpeg's stderr, read in a thread of its own: its last lines (for the error message) and its verdict."""

    def __init__(self, limits: ConversionLimits) -> None:
        self.tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.verdict = StderrVerdict(limits)

    def read(self, pipe: IO[bytes]) -> None:
        for raw in iter(lambda: pipe.readline(8192), b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.tail.append(line[:STDERR_LINE_CHARS])
                self.verdict.read(line)


class FfmpegRun:
    """One ffmpeg process, watched from start to end (the arguments are run_ffmpeg's)."""

    def __init__(self, stream_or_args: Any, *, expected_duration: float, limits: ConversionLimits,
                 progress: Callable[[float], None] | None = None, cancel: threading.Event | None = None,
                 timeout: float | None = None, progress_span: tuple[float, float] = (0.0, 100.0),
                 stall_estimate: float | None = None, stall_share: float = 0.9, warn_if_short: bool = True,
                 frame_rate: float | None = None, count_frames: bool = False, pass_fds: tuple[int, ...] = (),
                 meanwhile: Callable[[], None] | None = None) -> None:
        self.command = [ffmpeg_program(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
                        "-progress", "pipe:1", "-stats_period", "0.1", *ffmpeg_arguments(stream_or_args)]
        self.expected_duration = expected_duration
        self.limits = limits
        self.progress = progress
        self.cancel = cancel
        self.timeout = timeout
        self.low, self.high = progress_span
        self.reported = self.low
        self.stall = _Stall(stall_estimate, stall_share) if stall_estimate else None
        self.stall_reached = 0.0
        self.warn_if_short = warn_if_short
        self.frame_rate = frame_rate
        self.count_frames = count_frames and bool(frame_rate)
        self.clock = _ProgressReader()
        self.stderr = _StderrReader(limits)
        self.pass_fds = pass_fds
        self.meanwhile = meanwhile

    def run(self) -> int:
        """Start ffmpeg and wait for it; when it succeeded, the frames it encoded (its `frame=`, -1 if it reported
        none); a MediaError otherwise."""
        process = self._start()
        readers = [threading.Thread(target=self.stderr.read, args=(process.stderr,), daemon=True,
                                    name="ffmpeg-stderr"),
                   threading.Thread(target=self.clock.read, args=(process.stdout,), daemon=True,
                                    name="ffmpeg-progress")]
        if self.meanwhile is not None:  # started after the fork, so it never runs while this thread forks
            readers.append(threading.Thread(target=self.meanwhile, daemon=True, name="ffmpeg-meanwhile"))
        for reader in readers:
            reader.start()
        try:
            self._watch(process)
        except BaseException:
            if process.poll() is None:
                kill_group(process)
            raise
        finally:
            for reader in readers:
                reader.join(timeout=2)
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
        self._finish(process.returncode)
        return self.clock.frames

    def _start(self) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=self.pass_fds,
                                    **child_options(self.limits.max_conversion_memory_mb))
        except FileNotFoundError:
            raise MediaError("ffmpeg is not installed; install ffmpeg to convert videos.") from None

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for ffmpeg to exit, every POLL_INTERVAL stopping it when asked to and reporting progress."""
        started = time.monotonic()
        deadline = started + self.timeout if self.timeout is not None else None
        with exit_waiter(process) as exited:
            while not exited(POLL_INTERVAL):
                now = time.monotonic()
                self._stop_if_asked(process, past_deadline=deadline is not None and now >= deadline)
                self._report(self.low + (self.high - self.low) * self._fraction(now - started))

    def _stop_if_asked(self, process: subprocess.Popen[bytes], *, past_deadline: bool) -> None:
        """Kill ffmpeg and raise when the run is cancelled, its stderr calls for a stop, or its time is up."""
        if self.cancel is not None and self.cancel.is_set():
            kill_group(process)
            raise ConversionCancelled("The conversion was cancelled.")
        if self.stderr.verdict.message is not None:
            kill_group(process)
            raise MediaError(self.stderr.verdict.message)
        if past_deadline:
            kill_group(process)
            raise ConversionTimeout(f"The conversion took longer than the {self.timeout:g} s allowed and was "
                                    "stopped; try a shorter span, a smaller width or a lower fps.")

    def _fraction(self, elapsed: float) -> float:
        """The share of the run done: the stall's creep until ffmpeg's clock runs, then the clock's share."""
        out_time = self.written()
        fraction = 0.0
        if self.stall is not None:
            if self.clock.first_report_at is None or out_time <= 0:
                self.stall_reached = self.stall.fraction(elapsed)
            fraction = self.stall_reached
        if out_time > 0 and self.expected_duration > 0:
            ran = min(out_time / self.expected_duration, 1.0)
            fraction = self.stall_reached + (1.0 - self.stall_reached) * ran
        return fraction

    def written(self) -> float:
        """Seconds of output made so far: ffmpeg's clock, or frames encoded / frame_rate when `count_frames`
        (an encoder that holds its packets until the end, as libwebp_anim, leaves the clock at 0)."""
        if self.count_frames and self.frame_rate:
            return self.clock.frames / self.frame_rate if self.clock.frames >= 0 else -1.0
        return self.clock.out_time

    def _report(self, percent: float, *, final: bool = False) -> None:
        ceiling = self.high if final else self.low + (self.high - self.low) * 0.995
        percent = min(max(percent, self.reported), ceiling)
        if self.progress is not None and (final or percent - self.reported >= 0.1):
            self.reported = percent
            self.progress(percent)

    def _finish(self, returncode: int) -> None:
        """Raise for a run that ended badly (cancelled, stopped, failed); warn when its output is short."""
        if self.cancel is not None and self.cancel.is_set():
            raise ConversionCancelled("The conversion was cancelled.")
        stopped = self.stderr.verdict.after_exit(returncode)
        if stopped is not None:
            raise MediaError(stopped)
        if returncode != 0:
            raise MediaError(explain_ffmpeg_error(list(self.stderr.tail)))
        if self.warn_if_short:
            warn_if_short(self.written(), self.expected_duration, self.frame_rate)
        self._report(self.high, final=True)


def run_ffmpeg(stream_or_args: Any, *, expected_duration: float, limits: ConversionLimits, **options: Any) -> int:
    """Run ffmpeg to completion, reporting progress into `progress_span`; the frames it encoded (its `frame=`,
    of the first video output; -1 if it reported none); raise a MediaError otherwise.

    `stream_or_args`: an ffmpeg-python output node, or the argument list (with or without "ffmpeg").
    `expected_duration`: seconds of output the run should write (the clock `out_time` is measured on).
    `limits`: the conversion's; ffmpeg runs under its memory ceiling and is stopped, with a message naming the
    setting, when it meets the ceiling or a picture past `max_pixels`.
    `progress`: called in this thread with a percentage, monotonic, within `progress_span`; the span's
    end is reported once, when ffmpeg succeeded.
    `cancel`: when set, the process group is killed within POLL_INTERVAL and ConversionCancelled raised.
    `timeout`: wall-clock seconds; past it the process group is killed and ConversionTimeout raised.
    `stall_estimate`: seconds the run is expected to spend before its first output frame (see _Stall);
    progress creeps towards `stall_share` of the span meanwhile.
    `warn_if_short`: when the run succeeded but wrote clearly less than `expected_duration`, say so with
    `warn` (see collecting_warnings); off for runs whose output is not a clip (a palette). `frame_rate`:
    the output's frames per second, when known (the check allows for a frame or two of rounding).
    `count_frames`: measure the output by the frames encoded over `frame_rate` instead of ffmpeg's clock, for
    encoders that write nothing until they have every frame (libwebp_anim). `pass_fds`: file descriptors ffmpeg
    inherits (a pipe's end, named `pipe:N` in its arguments); the caller closes its own copies. `meanwhile`:
    work for the other core while ffmpeg runs (it needs none of ffmpeg's output), run in a thread started
    after ffmpeg and joined, as the threads reading ffmpeg's output are, before this returns or raises.
    """
    return FfmpegRun(stream_or_args, expected_duration=expected_duration, limits=limits, **options).run()
