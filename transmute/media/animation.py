"""One ffmpeg run that writes an animated picture (WebP, APNG) from the shared video chain: progress like the
GIF's, the GIF's cancel and timeout messages, and no partial output left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.formats import ConversionJob
from transmute.media.run import run_ffmpeg
from transmute.media.video import Plan


def decode_estimate(job: ConversionJob, the_plan: Plan) -> float:
    """A rough guess of the seconds spent before the first output frame when the graph holds every frame
    (reverse, boomerang): decoding the span and scaling it (the GIF plugin's estimate, without the palette)."""
    media = job.media
    source_pixels = (media.fps or 30.0) * the_plan.span * media.width * media.height
    output_pixels = the_plan.out_frames * the_plan.out_width * the_plan.out_height
    return 0.2 + source_pixels / 200e6 + output_pixels / 50e6


def encode_animation(job: ConversionJob, the_plan: Plan, output: Any, *, what: str,
                     count_frames: bool = False) -> None:
    """Run the ffmpeg-python `output` node that writes `job.output_path`, reporting progress on the output's
    clock (one forward pass, twice for boomerang; on the frames encoded with `count_frames`, for an encoder
    that writes everything at the end); raise with an actionable message, and remove a partial output, when
    it is cancelled, times out or fails. `what` names the format in messages ("WebP")."""
    if job.cancel.is_set():
        raise ConversionCancelled("The conversion was cancelled.")
    params = job.params
    # reverse and boomerang hold every frame before the first one goes out, and since ffmpeg 7 an encoder that
    # writes everything at the end (count_frames) leaves the frame count at 0 until then too: ffmpeg's clock
    # stands still meanwhile, so progress creeps on an estimate (as the GIF's encode pass does).
    buffered = params.reverse or params.boomerang
    out_seconds = the_plan.out_duration * (2 if params.boomerang else 1)
    estimate, share = decode_estimate(job, the_plan) if buffered else None, 0.5
    if count_frames:  # the whole run: libwebp_anim at its default effort encoded about 10 Mpixels a second here
        pixels = the_plan.out_frames * (2 if params.boomerang else 1) * the_plan.out_width * the_plan.out_height
        estimate, share = decode_estimate(job, the_plan) + pixels / 10e6, 0.9
    target = Path(job.output_path)
    try:
        run_ffmpeg(output, expected_duration=out_seconds, limits=job.limits, progress=job.progress,
                   cancel=job.cancel, timeout=job.timeout, progress_span=(0.0, 100.0),
                   stall_estimate=estimate, stall_share=share, frame_rate=params.fps, count_frames=count_frames)
    except ConversionTimeout:
        target.unlink(missing_ok=True)
        raise ConversionTimeout(
            f"The conversion took longer than the {job.timeout:g} s allowed and was stopped; try a shorter span, "
            "a smaller width or a lower fps.") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if not target.is_file() or target.stat().st_size == 0:
        target.unlink(missing_ok=True)
        raise MediaError(f"ffmpeg wrote no {what}; the chosen span may hold no frame of the video.")
