"""The `thumbs` format: a strip of small thumbnails of a video, evenly spaced in time, as one PNG.

A third-party transmute plugin: installed, it is found through the `transmute.plugins` entry point its
pyproject.toml declares; nothing in transmute names it. docs/plugins.md walks through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import ffmpeg
from msgspec import Meta

from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.core.options import FormatOptions
from transmute.media.filters import decoder_options, deinterlaced
from transmute.media.inputs import local_input
from transmute.media.limits import check_decode, input_options, max_pixels
from transmute.media.run import run_ffmpeg


class ThumbsOptions(FormatOptions, kw_only=True):
    """The thumbs format's options: how many thumbnails, and how tall (none of the video options apply)."""

    count: Annotated[int, Meta(ge=2, le=20, description="Thumbnails in the strip, one from the middle of each "
                                                        "equal slice of the video.")] = 5
    height: Annotated[int, Meta(ge=16, le=360, description="Height of each thumbnail in pixels; the width keeps "
                                                           "the video's aspect ratio.")] = 90


class ThumbsFormat(OutputFormat):
    """A strip of `count` thumbnails, left to right in time, as one PNG."""

    name = "thumbs"
    extension = "png"
    mime_type = "image/png"
    description = "A strip of small thumbnails, evenly spaced in time, as one PNG (a preview of the whole video)."
    options = ThumbsOptions

    def convert(self, job: ConversionJob) -> None:
        if job.cancel.is_set():
            raise ConversionCancelled("The conversion was cancelled.")
        params: ThumbsOptions = job.params
        media = job.media
        span = media.duration
        if span <= 0:
            raise MediaError("The video has no duration to take thumbnails from; upload a video that plays.")
        check_decode(media, span, job.limits)  # the same decode budget every format is held to
        thumb_width = max(1, round(media.display_width * params.height / media.display_height))
        if thumb_width * params.count * params.height > max_pixels(job.limits):
            raise MediaError(f"A strip of {params.count} thumbnails {thumb_width}x{params.height} would be larger "
                             "than transmute allows for one picture; choose a smaller count or height.")

        # One thumbnail from the middle of each of `count` equal slices: start half a slice in, then take one
        # frame per slice (the fps filter picks the frame nearest each instant).
        offset = span / params.count / 2
        source = ffmpeg.input(local_input(job.input_path), ss=f"{offset:.6f}",
                              **input_options(job.limits), **decoder_options(media))
        strip = (
            deinterlaced(source.video, media)
            .filter("fps", fps=f"{params.count / span:.6f}")
            .filter("scale", thumb_width, params.height)
            .filter("setsar", "1")
            .filter("tile", f"{params.count}x1")
            .output(local_input(job.output_path), vframes=1, update=1, format="image2", vcodec="png")
            .overwrite_output()
        )
        # ffmpeg's output clock stands still until the strip is complete (one picture, written at the end):
        # progress creeps along an estimate of the decoding time meanwhile.
        decoded_pixels = (media.fps or 30.0) * span * media.width * media.height
        try:
            run_ffmpeg(strip, expected_duration=span - offset, limits=job.limits, progress=job.progress,
                       cancel=job.cancel, timeout=job.timeout, stall_estimate=0.2 + decoded_pixels / 200e6,
                       stall_share=0.95, warn_if_short=False)
        except ConversionTimeout:
            Path(job.output_path).unlink(missing_ok=True)
            raise ConversionTimeout(f"The thumbnails took longer than the {job.timeout:g} s allowed and were "
                                    "stopped; try a shorter video.") from None
        except BaseException:
            Path(job.output_path).unlink(missing_ok=True)  # never leave half a PNG behind
            raise
        if not Path(job.output_path).is_file() or Path(job.output_path).stat().st_size == 0:
            raise MediaError("ffmpeg wrote no thumbnails; the video may hold no readable frame.")


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [ThumbsFormat()]
