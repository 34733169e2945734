"""The built-in animated PNG format: the shared video chain encoded by ffmpeg's APNG encoder (lossless,
full colour, alpha kept; frames store only the rectangle that changed) in an APNG that loops.

Extension `.png`: an APNG is a PNG (its first frame is an ordinary PNG image), so every file manager, viewer
and upload form takes it, and browsers animate it whatever its name; `.apng` is known to few of them.
MIME type `image/apng`: what browsers list for it in their Accept header and what MDN gives; it tells a client
the picture is animated, and browsers show it as they show image/png.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.core.options import VideoOptions
from transmute.media.animation import encode_animation
from transmute.media.inputs import local_input
from transmute.media.video import ordered, plan, source_video

FAITHFUL_SCALER = "lanczos+accurate_rnd+full_chroma_int+full_chroma_inp"
"""APNG stores RGB exactly: convert 4:2:0 sources with interpolated chroma, not repeated samples."""
PREDICTION = "mixed"
"""PNG row filter (ffmpeg's default for APNG is none): mixed, a filter chosen per row, made the smallest files
in total on the clips of docs/formats.md (7 % smaller than none or paeth; 8-29 % smaller than none on three of
them, 15 % larger on pure noise) for about 1.5 times the encoding time."""


class ApngOptions(VideoOptions, kw_only=True):
    """The APNG format's options: the shared video options, plus how many times it plays."""

    loop: Annotated[int, Meta(ge=0, le=65535, description="How many times the animation plays; 0 for ever.")] = 0


def pixel_format(params: ApngOptions, has_alpha: bool) -> str:
    """The smallest PNG colour type that holds the frames: gray when asked for, alpha only when the source has it."""
    if params.grayscale:
        return "ya8" if has_alpha else "gray"
    return "rgba" if has_alpha else "rgb24"


class ApngFormat(OutputFormat):
    name = "apng"
    extension = "png"
    mime_type = "image/apng"
    description = "Animated PNG: lossless full colour with transparency, plays in every browser; large files."
    options = ApngOptions

    def convert(self, job: ConversionJob) -> None:
        params: ApngOptions = job.params
        the_plan = plan(job)
        video = ordered(source_video(job, the_plan, scale_flags=FAITHFUL_SCALER), params)
        video = video.filter("format", pixel_format(params, job.media.has_alpha))
        output = video.output(local_input(job.output_path), format="apng", vcodec="apng", pred=PREDICTION,
                              plays=params.loop).overwrite_output()
        encode_animation(job, the_plan, output, what="APNG")


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [ApngFormat()]
