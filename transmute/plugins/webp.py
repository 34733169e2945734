"""The built-in animated WebP format: the shared video chain encoded by libwebp's animation encoder
(ffmpeg's `libwebp_anim`, which stores only what changed between frames), in a WebP that loops.

Lossy frames are 4:2:0 (yuv420p, what the source almost always is; yuva420p when the source has
transparency); lossless frames are RGB(A) from the scaler at full chroma, so they are the source's pixels.
Measurements against the GIF plugin on the same clips, and why QUALITY_DEFAULT is what it is: docs/formats.md.
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

QUALITY_DEFAULT = 75
"""libwebp's own default; measured at least 40 % smaller than the default GIF at a better SSIM on every clip of
docs/formats.md."""
FAITHFUL_SCALER = "lanczos+accurate_rnd+full_chroma_int+full_chroma_inp"
"""Lossless: 4:2:0 chroma interpolated, not repeated, into RGB; the frames kept are then the best the source gives."""


class WebpOptions(VideoOptions, kw_only=True):
    """The WebP format's options: the shared video options, plus libwebp's quality, lossless mode and effort."""

    quality: Annotated[int, Meta(ge=0, le=100, description="Picture quality, 0 (smallest) to 100 (best); with "
                                                           "lossless, the effort spent making the file smaller.")
                       ] = QUALITY_DEFAULT
    lossless: Annotated[bool, Meta(description="Keep every pixel exactly (larger files).")] = False
    loop: Annotated[int, Meta(ge=0, le=65535, description="How many times the animation plays; 0 for ever.")] = 0
    compression_level: Annotated[int, Meta(ge=0, le=6, description="Encoder effort, 0 (fastest) to 6 (smallest "
                                                                   "file); libwebp's method.")] = 4


def encoder(params: WebpOptions, has_alpha: bool) -> str:
    """libwebp's animation encoder for lossless and transparent output, its still encoder frame by frame otherwise.

    The animation encoder stores only the rectangle that changed and sets each frame's blend and dispose, so
    lossless frames come out exact and translucent pixels do not pile up over the previous frame. Lossy, it
    also lets pixels that nearly match the previous frame stay as they were, and merges frames that nearly
    match: measured on the clips of docs/formats.md, its SSIM was 0.07-0.14 lower than frame by frame at the
    same size (testsrc2 0.74 against 0.88 at quality 75). ffmpeg's webp muxer writes the frames of the still
    encoder as they come, opaque, each over the whole picture.
    """
    return "libwebp_anim" if params.lossless or has_alpha else "libwebp"


def pixel_format(params: WebpOptions, has_alpha: bool) -> str:
    """The frames libwebp is handed: RGB for lossless (what it stores), 4:2:0 otherwise; alpha when the source
    has it."""
    if params.lossless:
        return "bgra"
    return "yuva420p" if has_alpha else "yuv420p"


class WebpFormat(OutputFormat):
    name = "webp"
    extension = "webp"
    mime_type = "image/webp"
    description = "Animated WebP: much smaller than a GIF at the same look, full colour, transparency kept."
    options = WebpOptions

    def convert(self, job: ConversionJob) -> None:
        params: WebpOptions = job.params
        the_plan = plan(job)
        video = source_video(job, the_plan, scale_flags=FAITHFUL_SCALER if params.lossless else "lanczos")
        video = ordered(video, params).filter("format", pixel_format(params, job.media.has_alpha))
        codec = encoder(params, job.media.has_alpha)
        # No libwebp `preset`: photo was 5 % smaller at a lower SSIM, and ffmpeg 5.1 then drops `lossless`.
        output = video.output(
            local_input(job.output_path), format="webp", vcodec=codec, quality=params.quality,
            lossless=int(params.lossless), compression_level=params.compression_level, loop=params.loop,
        ).overwrite_output()
        # libwebp_anim hands the whole animation over at the end: progress counts the frames it was given.
        encode_animation(job, the_plan, output, what="WebP", count_frames=codec == "libwebp_anim")


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [WebpFormat()]
