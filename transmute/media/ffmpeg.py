"""Media helpers over ffmpeg-python: probe a file, run ffmpeg with progress, timeout and cancel.

Only local files, and only real video containers:

- a path containing "://" or the stdin placeholder "-" is refused, and the input must be one regular
  file (not a symbolic link, a device, a fifo or a folder);
- every input is opened as `file:<absolute path>` with `-protocol_whitelist file`, so a file name cannot
  smuggle in another protocol (`concat:`, `http:`...), and with `-format_whitelist` ALLOWED_DEMUXERS, so
  a file that is really a playlist or a list of files (HLS, ffconcat, SDP, an image sequence) is refused
  before its demuxer opens anything, whatever its name says;
- sources and conversions are bounded (picture size, duration, output frames, the memory reverse and
  boomerang buffer, the pixels decoded): see LimitsConfig and `check_source` / `check_output` / `check_decode`;
- decoding itself is bounded too: every input has the decoder's `max_pixels`, and every child an address-space
  ceiling (RLIMIT_AS); a run that meets either is stopped with a message naming the setting;
- ffmpeg and ffprobe run in their own session and die with the thread that started them (Linux:
  PR_SET_PDEATHSIG), so a worker killed mid-conversion leaves no ffmpeg behind.

Every failure is a MediaError whose message is one sentence a person can act on; ffmpeg's stderr is
never shown whole.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import ctypes
import json
import math
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ffmpeg

from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.models import MediaInfo
from transmute.core.options import DEFAULT_WIDTH
from transmute.settings import LimitsConfig

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
PROBE_TIMEOUT = 30.0
"""Seconds a probe may take before the file is declared unreadable."""
POLL_INTERVAL = 0.1
"""Seconds between two checks of cancel, timeout and progress while ffmpeg runs (cancel is seen within it)."""
STDERR_TAIL_LINES = 40
STDERR_LINE_CHARS = 400

ALLOWED_DEMUXERS: tuple[str, ...] = (
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2",  # QuickTime / MP4 family
    "matroska", "webm",
    "avi",
    "flv",
    "mpegts",
    "mpeg",  # MPEG program stream (.mpg, .vob)
    "ogg",
    "asf",  # .wmv, .asf
    "gif",
    "mxf",
)
"""The only ffmpeg demuxers a source may be read with: video containers that open no other file or URL.

Playlists and lists (hls, concat, sdp, rtsp...), image sequences (image2, *_pipe) and raw streams are
refused by ffmpeg itself (`-format_whitelist`), before their demuxer reads a line."""

INPUT_OPTIONS: dict[str, str] = {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_DEMUXERS)}
"""The ffmpeg input options every source is opened with, besides the decoder's picture cap (see `input_options`)."""


def input_options(limits: LimitsConfig | None = None) -> dict[str, str]:
    """INPUT_OPTIONS plus `max_pixels`, the decoder's cap on one picture (the largest source the limits accept):
    a frame larger than the probe saw, further in the file, is refused by the decoder instead of allocated.
    ffmpeg-python: `ffmpeg.input(path, **input_options())`."""
    return {**INPUT_OPTIONS, "max_pixels": str(max_pixels(limits or active_limits()))}


def max_pixels(limits: LimitsConfig) -> int:
    return limits.max_source_width * limits.max_source_height

_LISTS = {
    "hls": "an HLS playlist (m3u8)",
    "concat": "an ffconcat list of files",
    "sdp": "an SDP session description",
    "image2": "a still image or an image sequence",
    "tty": "a text file",
}
_AUDIO_DEMUXERS = frozenset({"wav", "w64", "mp3", "aac", "flac", "aiff", "amr", "ac3", "eac3", "ape", "wv", "tta",
                             "au", "caf", "mpc", "mpc8", "dts", "truehd", "loas", "voc", "xwma", "dsf"})


# ---------------------------------------------------------------------------------------------- paths


def local_input(path: str | os.PathLike[str]) -> str:
    """The ffmpeg input URL for a local file (`file:/abs/path`); MediaError for anything else."""
    text = os.fspath(path)
    if not text or text == "-" or "://" in text:
        raise MediaError(f"Only local files can be converted; {text!r} is not a local file path.")
    return "file:" + os.path.abspath(text)


def check_input_file(path: str | os.PathLike[str]) -> Path:
    """The path if it is one local, non-empty regular file; MediaError otherwise.

    Symbolic links, devices, fifos and sockets are refused: ffmpeg must read exactly the bytes of one file.
    """
    local_input(path)
    file = Path(path)
    try:
        info = os.lstat(file)
    except FileNotFoundError:
        raise MediaError(f"The file {os.fspath(path)!r} does not exist.") from None
    except OSError as exc:
        raise MediaError(f"The file {os.fspath(path)!r} cannot be read ({exc.strerror}).") from None
    if stat.S_ISLNK(info.st_mode):
        raise MediaError(f"{os.fspath(path)!r} is a symbolic link; transmute reads only regular files "
                         "(pass the file it points to).")
    if not stat.S_ISREG(info.st_mode):
        raise MediaError(f"{os.fspath(path)!r} is not a regular file (a folder, device, fifo or socket); "
                         "transmute reads only regular files.")
    if info.st_size == 0:
        raise MediaError("The file is empty; it is not a video transmute can read.")
    return file


# ---------------------------------------------------------------------------------------------- limits

_active_limits: contextvars.ContextVar[LimitsConfig | None] = contextvars.ContextVar("transmute_limits",
                                                                                   default=None)


@contextlib.contextmanager
def limits_applied(limits: LimitsConfig | None):
    """Within this block (this thread), probes and plugins check against `limits` instead of the environment."""
    token = _active_limits.set(limits)
    try:
        yield
    finally:
        _active_limits.reset(token)


def active_limits() -> LimitsConfig:
    """The limits of the conversion running in this thread: those applied, else the environment's."""
    return _active_limits.get() or LimitsConfig.from_env()


def _duration_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:g} s"


def check_source(media: MediaInfo, limits: LimitsConfig | None = None) -> None:
    """MediaError when a source is larger or longer than the limits allow."""
    limits = limits or active_limits()
    if media.width > limits.max_source_width or media.height > limits.max_source_height:
        raise MediaError(f"The video is {media.width}x{media.height} pixels; transmute accepts sources up to "
                         f"{limits.max_source_width}x{limits.max_source_height} (TRANSMUTE_MAX_SOURCE_WIDTH, "
                         "TRANSMUTE_MAX_SOURCE_HEIGHT).")
    if media.duration > limits.max_source_duration:
        raise MediaError(f"The video is {_duration_text(media.duration)} long; transmute accepts sources up to "
                         f"{_duration_text(limits.max_source_duration)} (TRANSMUTE_MAX_SOURCE_DURATION).")


FFMPEG_OWN_MB = 768
"""Address space ffmpeg maps besides the frames reverse and boomerang buffer (decoder, threads, scaler, GIF
encoder): measured 560-800 MB under the 1536 MB default ceiling, 720p and 1080p, one and two passes. A buffer
must fit in TRANSMUTE_MAX_CONVERSION_MEMORY_MB minus this, or the run would fail midway."""


def check_output(*, frames: int, width: int, height: int, buffered_frames: int = 0,
                 limits: LimitsConfig | None = None) -> None:
    """MediaError, before ffmpeg runs, when a conversion would write too many frames, or buffer too many.

    `frames`: frames the output will have. `buffered_frames`: frames of `width`x`height` a filter must hold
    in memory at once (reverse holds the whole span), counted at 4 bytes a pixel.
    """
    limits = limits or active_limits()
    if frames > limits.max_output_frames:
        raise MediaError(f"The conversion would write {frames} frames, more than the {limits.max_output_frames} "
                         "allowed (TRANSMUTE_MAX_OUTPUT_FRAMES); choose a shorter span, a lower fps or a "
                         "higher speed.")
    needed_mb = buffered_frames * width * height * 4 / (1024 * 1024)
    room_mb = limits.max_conversion_memory_mb - FFMPEG_OWN_MB
    if buffered_frames and limits.max_conversion_memory_mb > 0 and room_mb < needed_mb <= limits.max_reverse_mb:
        raise MediaError(f"Reverse and boomerang hold every frame in memory: {buffered_frames} frames of "
                         f"{width}x{height} need about {needed_mb:.0f} MB, more than the {max(room_mb, 0):g} MB "
                         f"ffmpeg has for them within its {limits.max_conversion_memory_mb:g} MB "
                         "(TRANSMUTE_MAX_CONVERSION_MEMORY_MB); choose a shorter span, a smaller width or a "
                         "lower fps.")
    if needed_mb > limits.max_reverse_mb:
        raise MediaError(f"Reverse and boomerang hold every frame in memory: {buffered_frames} frames of "
                         f"{width}x{height} need about {needed_mb:.0f} MB, more than the {limits.max_reverse_mb:g} "
                         "MB allowed (TRANSMUTE_MAX_REVERSE_MB); choose a shorter span, a smaller width or a "
                         "lower fps.")


def check_decode(media: MediaInfo, span: float, limits: LimitsConfig | None = None) -> None:
    """MediaError, before ffmpeg runs, when decoding `span` seconds of the source is more pixels than
    TRANSMUTE_MAX_DECODE_GIGAPIXELS allow (width * height * frames, frames from the probe's rate)."""
    limits = limits or active_limits()
    rate = media.fps or (media.frame_count / media.duration if media.frame_count and media.duration else 0) or 60.0
    frames = max(1, math.ceil(rate * span))
    gigapixels = media.width * media.height * frames / 1e9
    if gigapixels > limits.max_decode_gigapixels:
        raise MediaError(f"The conversion would decode {frames} frames of {media.width}x{media.height} "
                         f"({gigapixels:.3g} gigapixels), more than the {limits.max_decode_gigapixels:g} allowed "
                         "(TRANSMUTE_MAX_DECODE_GIGAPIXELS); choose a shorter span.")


def frames_too_large(size: str, limits: LimitsConfig | None = None) -> str:
    """The message for a file whose decoder met a picture past `max_pixels` (`size`: ffmpeg's "WxH")."""
    limits = limits or active_limits()
    return (f"The video has frames of {size} pixels, larger than the {limits.max_source_width}x"
            f"{limits.max_source_height} (or {max_pixels(limits)} pixels) transmute accepts "
            "(TRANSMUTE_MAX_SOURCE_WIDTH, TRANSMUTE_MAX_SOURCE_HEIGHT); its picture size changes inside the "
            "file.")


def out_of_memory(limits: LimitsConfig | None = None) -> str:
    limits = limits or active_limits()
    return (f"The conversion needed more than {limits.max_conversion_memory_mb:g} MB of memory "
            "(TRANSMUTE_MAX_CONVERSION_MEMORY_MB) and was stopped; try a smaller width, a lower fps or a "
            "shorter span.")


# ---------------------------------------------------------------------------------------------- children


def _resolve_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    function.restype = ctypes.c_int
    return function


_PRCTL = _resolve_prctl()
"""libc's prctl, looked up once at import (never in the forked child, where only it may be called)."""
PR_SET_PDEATHSIG = 1


def _address_space_limit(memory_mb: float) -> tuple[int, int] | None:
    """The (soft, hard) RLIMIT_AS for a child allowed `memory_mb` MiB, never above this process's hard limit;
    None for no ceiling (0, or no `resource` limits on this platform)."""
    if memory_mb <= 0 or not hasattr(resource, "RLIMIT_AS"):
        return None
    wanted = int(memory_mb * 1024 * 1024)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    return wanted, wanted


def child_options(memory_mb: float = 0) -> dict[str, Any]:
    """subprocess options for every ffmpeg and ffprobe run: its own session (so a timeout kills its whole
    group), on Linux a preexec_fn that asks the kernel to SIGKILL it when the thread that started it
    dies (PR_SET_PDEATHSIG): a worker killed mid-conversion leaves no ffmpeg running, and with `memory_mb`
    a ceiling on its address space (RLIMIT_AS): past it, its allocations fail and it stops, instead of a
    hostile file taking the machine's memory.

    The preexec_fn runs between fork and exec, so it only calls the prctl resolved at import, getppid and
    setrlimit (limits computed before the fork): when the parent died before prctl took effect, the child
    leaves at once instead of running orphaned.
    """
    options: dict[str, Any] = {"start_new_session": True}
    prctl = _PRCTL
    address_space = _address_space_limit(memory_mb)
    parent = os.getpid()

    def prepare_child() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, address_space)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)

    if prctl is not None or address_space is not None:
        options["preexec_fn"] = prepare_child
    if address_space is not None:
        # glibc reserves 64 MB of address space per malloc arena, up to 8 arenas a core: with ffmpeg's one
        # thread a core, a many-core host ran out of the ceiling with little memory in use (32 threads failed
        # under 1536 MB; with 2 arenas 48 threads converted 1080p at the same speed).
        options["env"] = {**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}
    return options


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


_ALPHA_PIX_FMTS = re.compile(r"^(yuva|gbrap|ya\d|rgba|bgra|argb|abgr|pal8)")
"""Pixel formats that carry transparency (pal8: a GIF's palette may hold a transparent entry)."""
_INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})


def _sample_aspect_ratio(video: dict[str, Any]) -> float:
    """The stream's sample aspect ratio; 1 when absent, unknown ("0:1", "N/A") or absurd."""
    text = str(video.get("sample_aspect_ratio") or "").replace(":", "/")
    value = _ratio(text)
    return value if 0.1 <= value <= 10 else 1.0


def _rotation(video: dict[str, Any]) -> int:
    """Degrees (0, 90, 180, 270) a player turns the picture: the display matrix, else the old `rotate` tag,
    counted as that tag counts them (ffprobe shows `rotate=270` as a matrix rotation of -90)."""
    for side_data in video.get("side_data_list") or []:
        if "rotation" in side_data:
            with contextlib.suppress(TypeError, ValueError):
                return round(float(side_data["rotation"]) / 90) % 4 * 90
    with contextlib.suppress(TypeError, ValueError):
        return round(float((video.get("tags") or {}).get("rotate", 0)) / 90) % 4 * 90
    return 0


def _has_alpha(video: dict[str, Any]) -> bool:
    tags = {str(key).lower(): str(value) for key, value in (video.get("tags") or {}).items()}
    return tags.get("alpha_mode") == "1" or bool(_ALPHA_PIX_FMTS.match(str(video.get("pix_fmt") or "")))


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def probe(path: str | os.PathLike[str], *, timeout: float = PROBE_TIMEOUT,
          limits: LimitsConfig | None = None) -> MediaInfo:
    """Describe the first video stream of a local file; MediaError when it has none, is not a video
    container transmute accepts (ALLOWED_DEMUXERS), or is larger or longer than `limits` allow
    (default: the limits applied in this thread, else the environment's)."""
    check_input_file(path)
    limits = limits or active_limits()
    options = [item for name, value in input_options(limits).items() for item in (f"-{name}", value)]
    command = [FFPROBE, "-v", "error", *options, "-show_format", "-show_streams", "-of", "json", local_input(path)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              **child_options(limits.max_conversion_memory_mb))
    except subprocess.TimeoutExpired:
        raise MediaError(f"Reading the file took longer than {timeout:g} s; it is not a video transmute "
                         "can read.") from None
    except FileNotFoundError:
        raise MediaError("ffprobe is not installed; install ffmpeg to convert videos.") from None
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        verdict = _StderrVerdict(limits)
        for line in stderr.splitlines():
            verdict.read(line)
        raise MediaError(verdict.after_exit(done.returncode)
                         or explain_ffmpeg_error(stderr.splitlines(), reading=True))
    try:
        data = json.loads(done.stdout or b"{}")
    except ValueError:
        raise MediaError("The file is not a video transmute can read (ffprobe gave no description).") from None
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    container = str(fmt.get("format_name") or "")
    if not set(container.split(",")) & set(ALLOWED_DEMUXERS):
        raise MediaError(_not_a_container(container))
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
    info = MediaInfo(
        duration=duration,
        width=width,
        height=height,
        fps=round(fps, 3),
        frame_count=int(frames) if frames else None,
        container=container,
        video_codec=str(video.get("codec_name") or ""),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        sample_aspect_ratio=_sample_aspect_ratio(video),
        rotation=_rotation(video),
        interlaced=str(video.get("field_order") or "") in _INTERLACED_FIELD_ORDERS,
        has_alpha=_has_alpha(video),
    )
    check_source(info, limits)
    return info


_ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}
"""ffmpeg's native VP8/VP9 decoders ignore the alpha channel WebM stores beside the picture; libvpx reads it."""


def decoder_options(media: MediaInfo) -> dict[str, str]:
    """Input options that decode `media` faithfully: libvpx for VP8/VP9 streams that carry alpha."""
    decoder = _ALPHA_DECODERS.get(media.video_codec) if media.has_alpha else None
    return {"c:v": decoder} if decoder else {}


# ---------------------------------------------------------------------------------------------- geometry, filters


def output_size(media: MediaInfo, *, width: int | None, keep_original_size: bool) -> tuple[int, int]:
    """The output size in square pixels, from the source's display size (sample aspect ratio and rotation
    applied): `keep_original_size` keeps it, `width` sets the width, else DEFAULT_WIDTH but never wider
    than the source shows; the height follows the display aspect ratio."""
    display_width, display_height = media.display_width, media.display_height
    if keep_original_size:
        return display_width, display_height
    if width is None:
        width = min(DEFAULT_WIDTH, display_width)
    return width, max(1, round(display_height * width / display_width))


def deinterlaced(video: Any, media: MediaInfo) -> Any:
    """The ffmpeg-python stream `video`, deinterlaced (bwdif) when the source is interlaced.

    Two fields a field-time apart in one frame comb every moving edge; bwdif rebuilds whole frames, and
    must come before any scaling mixes the fields' lines. One frame out per frame in (the rate is set later).
    """
    return video.filter("bwdif", mode="send_frame", deint="all") if media.interlaced else video


def to_gray(video: Any) -> Any:
    """The ffmpeg-python stream `video` in gray, its transparency kept (ya8: gray plus the alpha plane)."""
    return video.filter("format", "ya8")


def _not_a_container(demuxer: str) -> str:
    """The message for a file ffmpeg would read with a demuxer outside ALLOWED_DEMUXERS."""
    names = set(demuxer.split(","))
    if names & _AUDIO_DEMUXERS:
        return "The file has no video stream."
    kind = next((_LISTS[name] for name in names if name in _LISTS), None)
    if kind:
        kind += "; playlists and lists of files are never followed"
    elif any(name.endswith("_pipe") for name in names):
        kind = "a still image"
    else:
        kind = f"a {demuxer} file, not a video container"
    return (f"The file is not a video transmute can read (ffmpeg: it is {kind}); upload a video file "
            "(MP4, MOV, MKV, WebM, AVI, FLV, MPEG-TS, MPEG, Ogg, WMV, GIF or MXF).")


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


_TOO_LARGE = re.compile(r"Picture size (\d+x\d+) exceeds specified max pixel count")
"""The decoder met a picture past `max_pixels` (it then drops the frame and goes on: we stop the run)."""
_ALLOCATION_FAILED = re.compile(r"Cannot allocate memory|Out of memory|Unable to allocate|failed to allocate|"
                                r"get_buffer\(\) failed|pthread_create|Resource temporarily unavailable|"
                                r"failed to map segment|error while loading shared libraries",
                                re.IGNORECASE)
"""What ffmpeg logs when an allocation fails under the address-space ceiling (decoders then drop frames)."""
_INVALID_PICTURE = re.compile(r"image parameters invalid|Invalid (image|picture) size|Invalid dimensions",
                              re.IGNORECASE)
"""A get_buffer failure on a damaged or refused picture size, not on memory."""
_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGKILL})
"""How a process dies when an allocation it does not check fails under RLIMIT_AS."""


class _StderrVerdict:
    """Watches ffmpeg's stderr line by line for what must stop the run although ffmpeg would go on (it skips
    the frames it cannot decode and may exit 0): a picture past `max_pixels`, an allocation refused under
    the memory ceiling. `message` is set once, by the first such line."""

    def __init__(self, limits: LimitsConfig) -> None:
        self.limits = limits
        self.message: str | None = None
        self._invalid_picture = False

    def read(self, line: str) -> None:
        if self.message is not None:
            return
        too_large = _TOO_LARGE.search(line)
        if too_large:
            self.message = frames_too_large(too_large.group(1), self.limits)
        elif _INVALID_PICTURE.search(line):
            self._invalid_picture = True
        elif (self.limits.max_conversion_memory_mb > 0 and not self._invalid_picture
              and _ALLOCATION_FAILED.search(line)):
            self.message = out_of_memory(self.limits)

    def after_exit(self, returncode: int) -> str | None:
        """The message for a run that ended: a line seen, or a crash under the memory ceiling."""
        if self.message is None and returncode < 0 and -returncode in _CRASH_SIGNALS \
                and self.limits.max_conversion_memory_mb > 0:
            self.message = out_of_memory(self.limits)
        return self.message


_NOT_WHITELISTED = re.compile(r"^\[(\w+) @ 0x[0-9a-f]+\]\s*Format not on whitelist")


def explain_ffmpeg_error(stderr_lines: Sequence[str], *, reading: bool = False) -> str:
    """One human sentence for a failed ffmpeg/ffprobe run, from the tail of its stderr."""
    for line in stderr_lines:
        refused = _NOT_WHITELISTED.match(line.strip())
        if refused:
            return _not_a_container(refused.group(1))
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


SHORT_OUTPUT_TOLERANCE = (0.5, 0.1, 2)
"""A run's output may fall short of the expected length by this many seconds, this share of it, or this many
output frames (the largest), before the source is reported as ending early: ffmpeg's clock stops at the last
frame's start, a boomerang's turn frame is not repeated, and edit lists cost a frame or two."""

_collected_warnings: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("transmute_warnings",
                                                                                      default=None)


@contextlib.contextmanager
def collecting_warnings():
    """Within this block (this thread), what a conversion notices but survives is added to the yielded list:
    one sentence each, for the user (the task's `warnings`, the CLI's stderr)."""
    found: list[str] = []
    token = _collected_warnings.set(found)
    try:
        yield found
    finally:
        _collected_warnings.reset(token)


def warn(message: str) -> None:
    """Tell the user of the conversion running in this thread something went wrong but a result was made."""
    found = _collected_warnings.get()
    if found is not None and message not in found:
        found.append(message)


def _check_length(written: float, expected: float, frame_rate: float | None) -> None:
    """Warn when a run wrote clearly less than expected: the source holds less than its header says
    (a truncated download or copy), and the user would otherwise get a short result without a word."""
    if written < 0:
        return
    seconds, share, frames = SHORT_OUTPUT_TOLERANCE
    frame = 1 / frame_rate if frame_rate else 0.0
    written += frame  # ffmpeg's clock stops where the last frame starts; it is shown for one frame more
    if expected - written <= max(seconds, share * expected, frames * frame):
        return
    warn(f"The result is {written:.1f} s long instead of the {expected:.1f} s expected: the video ends earlier "
         "than its header says (the file may be truncated or damaged).")


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
    warn_if_short: bool = True,
    frame_rate: float | None = None,
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
    `warn_if_short`: when the run succeeded but wrote clearly less than `expected_duration`, say so with
    `warn` (see collecting_warnings); off for runs whose output is not a clip (a palette). `frame_rate`:
    the output's frames per second, when known (the check allows for a frame or two of rounding).
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

    limits = active_limits()
    verdict = _StderrVerdict(limits)
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, **child_options(limits.max_conversion_memory_mb))
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
                verdict.read(line)

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
            if verdict.message is not None:
                _kill_group(process)
                raise MediaError(verdict.message)
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
    stopped = verdict.after_exit(process.returncode)
    if stopped is not None:
        raise MediaError(stopped)
    if process.returncode != 0:
        raise MediaError(explain_ffmpeg_error(list(stderr_tail)))
    if warn_if_short:
        _check_length(clock["out_time"], expected_duration, frame_rate)
    report(high, final=True)
