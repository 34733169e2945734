"""Media helpers over ffmpeg-python: probe a file, run ffmpeg with progress, timeout and cancel.

Only local files: a path containing "://" or the stdin placeholder "-" is refused, and every input is
opened as `file:<absolute path>` with `-protocol_whitelist file`, so a file name cannot smuggle in
another protocol (`concat:`, `http:`...). Every failure is a MediaError whose message is one sentence
a person can act on; ffmpeg's stderr is never shown whole.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ffmpeg
import msgspec

from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
PROBE_TIMEOUT = 30.0
"""Seconds a probe may take before the file is declared unreadable."""
POLL_INTERVAL = 0.1
"""Seconds between two checks of cancel, timeout and progress while ffmpeg runs (cancel is seen within it)."""
STDERR_TAIL_LINES = 40
STDERR_LINE_CHARS = 400


class MediaInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a probe learned of a media file."""

    duration: float
    """Seconds."""
    width: int
    height: int
    fps: float
    frame_count: int | None = None
    container: str = ""
    video_codec: str = ""
    has_audio: bool = False


# ---------------------------------------------------------------------------------------------- paths


def local_input(path: str | os.PathLike[str]) -> str:
    """The ffmpeg input URL for a local file (`file:/abs/path`); MediaError for anything else."""
    text = os.fspath(path)
    if not text or text == "-" or "://" in text:
        raise MediaError(f"Only local files can be converted; {text!r} is not a local file path.")
    return "file:" + os.path.abspath(text)


def _check_readable(path: str | os.PathLike[str]) -> Path:
    local_input(path)
    file = Path(path)
    if not file.exists():
        raise MediaError(f"The file {os.fspath(path)!r} does not exist.")
    if not file.is_file():
        raise MediaError(f"{os.fspath(path)!r} is not a regular file.")
    if file.stat().st_size == 0:
        raise MediaError("The file is empty; it is not a video transmute can read.")
    return file


# ---------------------------------------------------------------------------------------------- probe


def _ratio(text: Any) -> float:
    """'30000/1001' -> 29.97; '0/0', 'N/A', None -> 0."""
    try:
        if isinstance(text, str) and "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den) if float(den) else 0.0
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def probe(path: str | os.PathLike[str], *, timeout: float = PROBE_TIMEOUT) -> MediaInfo:
    """Describe the first video stream of a local file; MediaError when it has none or is not media."""
    _check_readable(path)
    command = [FFPROBE, "-v", "error", "-protocol_whitelist", "file", "-show_format", "-show_streams",
               "-of", "json", local_input(path)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise MediaError(f"Reading the file took longer than {timeout:g} s; it is not a video transmute "
                         "can read.") from None
    except FileNotFoundError:
        raise MediaError("ffprobe is not installed; install ffmpeg to convert videos.") from None
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise MediaError(explain_ffmpeg_error(stderr.splitlines(), reading=True))
    try:
        data = json.loads(done.stdout or b"{}")
    except ValueError:
        raise MediaError("The file is not a video transmute can read (ffprobe gave no description).") from None
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    if not videos:
        raise MediaError("The file has no video stream.")
    video = videos[0]
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise MediaError("The file's video stream has no picture size; it may be damaged.")
    fps = _ratio(video.get("avg_frame_rate")) or _ratio(video.get("r_frame_rate"))
    frames = _number(video.get("nb_frames"))
    duration = _number(video.get("duration")) or _number(fmt.get("duration"))
    if duration is None and frames and fps:
        duration = frames / fps
    if duration is None:
        raise MediaError("The file has no duration transmute can read; it may be a still image or damaged.")
    return MediaInfo(
        duration=duration,
        width=width,
        height=height,
        fps=round(fps, 3),
        frame_count=int(frames) if frames else None,
        container=str(fmt.get("format_name") or ""),
        video_codec=str(video.get("codec_name") or ""),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
    )


# ---------------------------------------------------------------------------------------------- errors

_KNOWN_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), message) for pattern, message in (
        (r"matches no streams|does not contain any stream|no video stream|Output file .* does not contain",
         "The file has no video stream."),
        (r"moov atom not found",
         "The file is an incomplete or damaged MP4/MOV (ffmpeg: moov atom not found); upload the whole file."),
        (r"Invalid data found when processing input|could not find codec parameters|"
         r"End of file|Unknown input format",
         "The file is not a video transmute can read (ffmpeg: invalid data found when processing input)."),
        (r"No such file or directory", "The input file does not exist (ffmpeg: no such file or directory)."),
        (r"Permission denied", "ffmpeg could not open a file (permission denied); check the file's permissions."),
        (r"No space left on device",
         "There is no space left on the disk for the conversion; free some space and try again."),
        (r"Decoder \(codec (\S+)\) not found|Unknown decoder|Unsupported codec|codec not currently supported"
         r"|Encoder .*not found|Unknown encoder|Could not find tag for codec",
         "The video uses a codec transmute's ffmpeg cannot handle ({detail})."),
        (r"Protocol '.*' not on whitelist|Protocol not found",
         "Only local files can be converted (ffmpeg refused a non-file protocol)."),
        (r"Cannot allocate memory|Out of memory",
         "ffmpeg ran out of memory; try a smaller width, a lower fps or a shorter span."),
    )
)
_NOISE = re.compile(r"^(Conversion failed!?|Error (while|opening|initializing).*|Exiting normally.*|"
                    r"To ignore this, add a trailing.*|Invalid argument|\s*)$", re.IGNORECASE)
_PREFIX = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")


def _clean(line: str) -> str:
    line = _PREFIX.sub("", line.strip())
    line = re.sub(r"^(file:)?\S*[/\\]\S*:\s+", "", line)  # "file:/tmp/x/in.mp4: Invalid data..." -> message
    return line.strip()


def explain_ffmpeg_error(stderr_lines: Sequence[str], *, reading: bool = False) -> str:
    """One human sentence for a failed ffmpeg/ffprobe run, from the tail of its stderr."""
    lines = [_clean(line) for line in stderr_lines if line.strip()]
    for pattern, message in _KNOWN_ERRORS:
        for line in lines:
            found = pattern.search(line)
            if found:
                return message.format(detail=(found.group(1) if found.groups() and found.group(1) else line)[:120])
    meaningful = [line for line in lines if not _NOISE.match(line)]
    detail = (meaningful or lines or ["no error message"])[-1].rstrip(".")
    if len(detail) > 200:
        detail = detail[:197] + "..."
    if reading:
        return f"The file is not a video transmute can read (ffmpeg: {detail})."
    return f"ffmpeg could not convert the video ({detail})."


# ---------------------------------------------------------------------------------------------- run


def _command(stream_or_args: Any) -> list[str]:
    """The ffmpeg argument list (without the program name) for an ffmpeg-python node or a list."""
    if isinstance(stream_or_args, (list, tuple)):
        args = [str(arg) for arg in stream_or_args]
    else:
        args = [str(arg) for arg in ffmpeg.compile(stream_or_args, cmd=FFMPEG)]
    if args and os.path.basename(args[0]) == FFMPEG:
        args = args[1:]
    return args


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ffmpeg's whole process group (it runs in its own session), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


class _Stall:
    """Progress for the part of a run where ffmpeg's output clock stands still (palettegen, reverse).

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


def run_ffmpeg(
    stream_or_args: Any,
    *,
    expected_duration: float,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    progress_span: tuple[float, float] = (0.0, 100.0),
    stall_estimate: float | None = None,
    stall_share: float = 0.9,
) -> None:
    """Run ffmpeg to completion, reporting progress into `progress_span`; raise a MediaError otherwise.

    `stream_or_args`: an ffmpeg-python output node, or the argument list (with or without "ffmpeg").
    `expected_duration`: seconds of output the run should write (the clock `out_time` is measured on).
    `progress`: called in this thread with a percentage, monotonic, within `progress_span`; the span's
    end is reported once, when ffmpeg succeeded.
    `cancel`: when set, the process group is killed within POLL_INTERVAL and ConversionCancelled raised.
    `timeout`: wall-clock seconds; past it the process group is killed and ConversionTimeout raised.
    `stall_estimate`: seconds the run is expected to spend before its first output frame (see _Stall);
    progress creeps towards `stall_share` of the span meanwhile.
    """
    args = _command(stream_or_args)
    command = [FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
               "-progress", "pipe:1", "-stats_period", "0.2", *args]
    low, high = progress_span
    reported = [low]

    def report(percent: float, *, final: bool = False) -> None:
        ceiling = high if final else low + (high - low) * 0.995
        percent = min(max(percent, reported[0]), ceiling)
        if progress is not None and (final or percent - reported[0] >= 0.1):
            reported[0] = percent
            progress(percent)

    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
    except FileNotFoundError:
        raise MediaError("ffmpeg is not installed; install ffmpeg to convert videos.") from None

    stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    clock = {"out_time": -1.0, "first_report_at": None}

    def read_stderr() -> None:
        assert process.stderr is not None
        for raw in iter(lambda: process.stderr.readline(8192), b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                stderr_tail.append(line[:STDERR_LINE_CHARS])

    def read_progress() -> None:
        assert process.stdout is not None
        for raw in iter(lambda: process.stdout.readline(8192), b""):
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key == "out_time_us":
                with contextlib.suppress(ValueError):  # "N/A" before the first frame
                    clock["out_time"] = max(clock["out_time"], int(value) / 1e6)
            elif key == "progress" and clock["first_report_at"] is None:
                clock["first_report_at"] = time.monotonic()

    readers = [threading.Thread(target=read_stderr, daemon=True, name="ffmpeg-stderr"),
               threading.Thread(target=read_progress, daemon=True, name="ffmpeg-progress")]
    for reader in readers:
        reader.start()

    stall = _Stall(stall_estimate, stall_share) if stall_estimate else None
    stall_reached = 0.0
    started = time.monotonic()
    deadline = started + timeout if timeout is not None else None
    try:
        while True:
            try:
                process.wait(timeout=POLL_INTERVAL)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if cancel is not None and cancel.is_set():
                _kill_group(process)
                raise ConversionCancelled("The conversion was cancelled.")
            if deadline is not None and now >= deadline:
                _kill_group(process)
                raise ConversionTimeout(f"The conversion took longer than the {timeout:g} s allowed and was "
                                        "stopped; try a shorter span, a smaller width or a lower fps.")
            fraction = 0.0
            if stall is not None:
                if clock["first_report_at"] is None or clock["out_time"] <= 0:
                    stall_reached = stall.fraction(now - started)
                fraction = stall_reached
            if clock["out_time"] > 0 and expected_duration > 0:
                ran = min(clock["out_time"] / expected_duration, 1.0)
                fraction = stall_reached + (1.0 - stall_reached) * ran
            report(low + (high - low) * fraction)
    except BaseException:
        if process.poll() is None:
            _kill_group(process)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=2)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    if cancel is not None and cancel.is_set():
        raise ConversionCancelled("The conversion was cancelled.")
    if process.returncode != 0:
        raise MediaError(explain_ffmpeg_error(list(stderr_tail)))
    report(high, final=True)
