"""What the video-file formats (mp4, webm) share: their options' defaults (the source's size and frame rate, not
GIF's 480 px at 15 fps), and one encoding run with progress, cancel, timeout and a partial output removed."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.formats import ConversionJob
from transmute.core.options import VideoOptions
from transmute.media.run import run_ffmpeg
from transmute.media.video import Plan

MAX_DEFAULT_RATE = 60
"""Without `fps`, the source's rate, halved while above this (a 120 or 240 fps phone clip plays at 60 or 30)."""
FALLBACK_RATE = Fraction(25)
"""The rate used when the probe found none."""


class ClipOptions(VideoOptions, kw_only=True):
    """The shared video options as a video file takes them: by default the source's size and frame rate."""

    width: Annotated[int, Meta(ge=16, le=4096, description="Output width in pixels; height keeps the aspect "
                                                           "ratio. Default: the source's display width.")] | None = None
    fps: Annotated[int, Meta(ge=1, le=50, description="Output frame rate. Default: the source's (halved while "
                                                      "above 60).")] | None = None


def source_rate(fps: float) -> Fraction:
    """The source's frame rate as a fraction ffmpeg's fps filter keeps exactly: NTSC rates (29.97 -> 30000/1001)
    and whole numbers when the probe's rounded figure is within 0.05 % of one, halved while above
    MAX_DEFAULT_RATE."""
    if not fps or fps <= 0:
        return FALLBACK_RATE
    rate = Fraction(fps).limit_denominator(1001)
    for candidate in (Fraction(round(fps * 1.001) * 1000, 1001), Fraction(round(fps))):
        if candidate and abs(candidate - Fraction(fps)) / candidate <= Fraction(5, 10_000):
            rate = candidate
            break
    while rate > MAX_DEFAULT_RATE:
        rate /= 2
    return rate


def with_defaults(job: ConversionJob) -> ConversionJob:
    """The job with its ClipOptions resolved: no width means the source's size, no fps the source's rate (a
    Fraction, which plan and the fps filter take as they take an int)."""
    params = job.params
    changes: dict[str, Any] = {}
    if params.width is None:
        changes["keep_original_size"] = True
    if params.fps is None:
        changes["fps"] = source_rate(job.media.fps)
    return dataclasses.replace(job, params=msgspec.structs.replace(params, **changes)) if changes else job


def stall_estimate(job: ConversionJob, the_plan: Plan) -> float | None:
    """With reverse or boomerang, ffmpeg writes nothing until the span is decoded and buffered: a rough guess of
    that time (decode, then scale, in pixels a second on one of our cores) so progress moves meanwhile."""
    if not (job.params.reverse or job.params.boomerang):
        return None
    media = job.media
    source_pixels = (media.fps or 30.0) * the_plan.span * media.width * media.height
    output_pixels = the_plan.out_frames * the_plan.out_width * the_plan.out_height
    return 0.2 + source_pixels / 200e6 + output_pixels / 50e6


def encode(job: ConversionJob, the_plan: Plan, output: Any, *, kind: str) -> None:
    """Run the ffmpeg-python `output` node of `job` (a `kind` file, such as "MP4"), reporting progress over the
    output's length (boomerang's is twice the span); on failure, cancel or timeout no partial file is left."""
    if job.cancel.is_set():
        raise ConversionCancelled("The conversion was cancelled.")
    seconds = the_plan.out_duration * (2 if job.params.boomerang else 1)
    try:
        frames = run_ffmpeg(output, expected_duration=seconds, limits=job.limits, progress=job.progress,
                            cancel=job.cancel, timeout=job.timeout, progress_span=(0.0, 100.0),
                            stall_estimate=stall_estimate(job, the_plan), stall_share=0.5,
                            frame_rate=float(job.params.fps))
    except ConversionTimeout:
        Path(job.output_path).unlink(missing_ok=True)
        raise ConversionTimeout(
            f"The conversion took longer than the {job.timeout:g} s allowed and was stopped; try a shorter span, a "
            "smaller width, a lower fps or a faster encoder setting.") from None
    except BaseException:
        Path(job.output_path).unlink(missing_ok=True)
        raise
    # no video frame: no file, or one holding the sound alone
    if frames == 0 or not Path(job.output_path).is_file() or Path(job.output_path).stat().st_size == 0:
        Path(job.output_path).unlink(missing_ok=True)
        raise MediaError(f"ffmpeg wrote no {kind}; the chosen span may hold no frame of the video.")
