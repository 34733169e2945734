"""Describe a local video file with ffprobe (MediaInfo), refusing what transmute does not convert."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
from typing import Any

from transmute.core.errors import MediaError
from transmute.core.formats import ConversionLimits
from transmute.core.models import MediaInfo
from transmute.media.explain import explain_ffmpeg_error
from transmute.media.inputs import ALLOWED_DEMUXERS, check_input_file, local_input, not_a_container
from transmute.media.limits import check_source, input_options
from transmute.media.process import FFPROBE, child_options
from transmute.media.verdict import StderrVerdict

PROBE_TIMEOUT = 30.0
"""Seconds a probe may take before the file is declared unreadable."""

_ALPHA_PIX_FMTS = re.compile(r"^(yuva|gbrap|ya\d|rgba|bgra|argb|abgr|pal8)")
"""Pixel formats that carry transparency (pal8: a GIF's palette may hold a transparent entry)."""
_INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})


def probe(path: str | os.PathLike[str], *, limits: ConversionLimits, timeout: float = PROBE_TIMEOUT) -> MediaInfo:
    """Describe the first video stream of a local file; MediaError when it has none, is not a video
    container transmute accepts (ALLOWED_DEMUXERS), or is larger or longer than `limits` allow."""
    check_input_file(path)
    data = _ffprobe(path, limits, timeout)
    fmt = data.get("format") or {}
    container = str(fmt.get("format_name") or "")
    if not set(container.split(",")) & set(ALLOWED_DEMUXERS):
        raise MediaError(not_a_container(container))
    info = _media_info(data.get("streams") or [], fmt, container)
    check_source(info, limits)
    return info


def _ffprobe(path: str | os.PathLike[str], limits: ConversionLimits, timeout: float) -> dict[str, Any]:
    """ffprobe's JSON description of the file's format and streams; MediaError when it cannot read it."""
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
        verdict = StderrVerdict(limits)
        for line in stderr.splitlines():
            verdict.read(line)
        raise MediaError(verdict.after_exit(done.returncode)
                         or explain_ffmpeg_error(stderr.splitlines(), reading=True))
    try:
        return json.loads(done.stdout or b"{}")
    except ValueError:
        raise MediaError("The file is not a video transmute can read (ffprobe gave no description).") from None


def _media_info(streams: list[dict[str, Any]], fmt: dict[str, Any], container: str) -> MediaInfo:
    """The MediaInfo of the first video stream (cover pictures aside); MediaError when there is none usable."""
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
        container=container,
        video_codec=str(video.get("codec_name") or ""),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        sample_aspect_ratio=_sample_aspect_ratio(video),
        rotation=_rotation(video),
        interlaced=str(video.get("field_order") or "") in _INTERLACED_FIELD_ORDERS,
        has_alpha=_has_alpha(video),
    )


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
