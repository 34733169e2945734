"""What every video-output format shares: the plan of a conversion (the span, the output size and frame
count, checked against the limits) and the ffmpeg chain that reads it (trim, deinterlace, speed, fps, scale
to the display size in square pixels, grayscale), then plays it reversed or as a boomerang."""

from __future__ import annotations

from dataclasses import dataclass

import ffmpeg

from transmute.core.errors import MediaError
from transmute.core.formats import ConversionJob
from transmute.media.crop import Region, crop_filter, crop_region
from transmute.media.filters import decoder_options, deinterlaced, to_gray
from transmute.media.geometry import output_size
from transmute.media.inputs import local_input, seek_options
from transmute.media.limits import check_decode, check_output, input_options


@dataclass(frozen=True)
class Plan:
    """What will be converted: the span of the source and the output geometry."""

    start: float
    span: float
    out_width: int
    out_height: int
    out_duration: float
    """Seconds of one forward pass of the output (span / speed)."""
    out_frames: int
    """Frames of one forward pass (boomerang plays 2n - 1)."""
    crop: Region | None = None
    """The part of the picture kept, in display pixels; None for all of it."""


def plan(job: ConversionJob, *, even: bool = False, crop: str | None = None) -> Plan:
    """Resolve the span (end clamped to the source), the `crop` region (a validated `crop` option, see
    transmute.media.crop) and the output size, in the crop's proportions (`even`: both sides rounded down to
    even numbers, as yuv420p codecs need); MediaError when the span is empty, the crop reaches past the
    picture, or the output is past the limits (frames; the memory reverse and boomerang buffer; the pixels
    decoded)."""
    params, media = job.params, job.media
    if params.start_time >= media.duration:
        raise MediaError(f"The start time ({params.start_time:g} s) is at or beyond the end of the video "
                         f"({media.duration:g} s); choose a start time before {media.duration:g} s.")
    end = media.duration if params.end_time is None else min(params.end_time, media.duration)
    span = end - params.start_time
    region = crop_region(crop, media.display_width, media.display_height) if crop else None
    out_width, out_height = output_size(media, width=params.width, keep_original_size=params.keep_original_size,
                                        picture=(region.width, region.height) if region else None)
    if even:
        out_width, out_height = max(2, out_width - out_width % 2), max(2, out_height - out_height % 2)
    out_duration = span / params.speed
    forward = max(1, round(out_duration * params.fps))
    # reverse holds the span; boomerang's backward half holds it again (after reverse, if both).
    buffered = forward * (int(params.reverse) + int(params.boomerang))
    check_output(frames=2 * forward - 1 if params.boomerang else forward, width=out_width, height=out_height,
                 buffered_frames=buffered, limits=job.limits)
    check_decode(media, span, job.limits)
    return Plan(start=params.start_time, span=span, out_width=out_width, out_height=out_height,
                out_duration=out_duration, out_frames=forward, crop=region)


def source_input(job: ConversionJob, the_plan: Plan):
    """The source, opened for the plan's span (input seeking): one ffmpeg-python input node. Built again with
    the same arguments it is the same node, so the video and the audio chain share one `-i`."""
    return ffmpeg.input(local_input(job.input_path), **seek_options(the_plan.start), t=f"{the_plan.span:.6f}",
                        **input_options(job.limits), **decoder_options(job.media))


def source_video(job: ConversionJob, the_plan: Plan, *, scale_flags: str = "lanczos"):
    """The shared chain: trimmed input -> deinterlace -> speed -> fps -> crop (the plan's) -> scale -> grayscale
    (an ffmpeg-python stream of the source's video). fps comes last instead when it repeats frames (a source
    slower than the output): the same frames, each scaled once, not once for every copy."""
    params = job.params
    video = deinterlaced(source_input(job, the_plan).video, job.media)
    if params.speed != 1.0:
        video = video.filter("setpts", f"(PTS-STARTPTS)/{params.speed:g}")
    repeats_frames = bool(job.media.fps) and job.media.fps * params.speed < params.fps
    if not repeats_frames:
        video = video.filter("fps", fps=params.fps)
    if the_plan.crop is not None:  # before scale: the output size follows the crop's proportions
        video = crop_filter(video, the_plan.crop, job.media.display_width, job.media.display_height)
    # Always to the planned size, also when it is the source's: a frame larger than the probe saw (the picture
    # size may change inside a file) is scaled down here, before split, reverse or a palette buffer it. At
    # the source's size the scaler passes frames through untouched; with full-chroma flags it, not ffmpeg's
    # fast automatic conversion (which repeats chroma samples), converts them.
    video = video.filter("scale", the_plan.out_width, the_plan.out_height, flags=scale_flags)
    video = video.filter("setsar", "1")  # square pixels: the output has the display's proportions
    if params.grayscale:
        video = to_gray(video)
    if repeats_frames:
        video = video.filter("fps", fps=params.fps)
    return video


def ordered(video, params):
    """The frames reversed (`reverse`), then forward and backward (`boomerang`: 2n - 1 frames, the turn frame
    once)."""
    if params.reverse:
        video = video.filter("reverse")
    if params.boomerang:
        split = video.split()
        forward, backward = split[0], split[1]
        backward = backward.filter("reverse").filter("trim", start_frame=1).filter("setpts", "PTS-STARTPTS")
        video = ffmpeg.concat(forward, backward, v=1, a=0)
    return video
