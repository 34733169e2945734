"""The built-in WebM format: VP9 (libvpx-vp9) in constant-quality mode, Opus sound, transparency kept.

A source with an alpha channel (ProRes 4444, PNG-in-MOV, a GIF, a VP9 WebM with alpha...) is encoded as
yuva420p: libvpx-vp9 writes the alpha plane as a second VP9 stream beside the picture (Matroska BlockAdditional,
tagged alpha_mode=1), which browsers composite. Other sources are yuv420p. Both at even dimensions, which 4:2:0
needs.
"""

from __future__ import annotations

from typing import Annotated, Literal

import ffmpeg
from msgspec import Meta

from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.media.audio import keeps_audio, source_audio
from transmute.media.encode import ClipOptions, encode, with_defaults
from transmute.media.inputs import local_input
from transmute.media.video import ordered, plan, source_video

OPUS_BITRATE = "96k"
"""libopus's own default for stereo; Opus at 96 kb/s is about as good as AAC at 128."""


class WebmOptions(ClipOptions, kw_only=True):
    """The WebM format's options: the shared video options, plus VP9's quality and effort, and the sound."""

    crf: Annotated[int, Meta(ge=0, le=63, description="VP9 constant quality: 0 best, 63 worst; 32 is about "
                                                      "what H.264 gives at crf 23, in a smaller file.")] = 32
    # The playback `speed` is a shared option, so the encoder's speed is named after libvpx's own setting.
    # With the `good` deadline libvpx takes 0-5 (more is the same as 5): 4 is the usual choice with row
    # multithreading, 0-1 are many times slower for a few percent.
    cpu_used: Annotated[int, Meta(ge=0, le=5, description="VP9 encoder speed (libvpx cpu-used): 0 slowest and "
                                                          "smallest, 5 fastest.")] = 4
    audio: Annotated[Literal["opus", "drop"], Meta(
        description="opus: keep the source's sound (Opus 96 kb/s), following start_time, end_time and speed; "
                    "none with reverse or boomerang, or when the source has none. drop: no sound.")] = "opus"


class WebmFormat(OutputFormat):
    name = "webm"
    extension = "webm"
    mime_type = "video/webm"
    description = "VP9 video with Opus sound, smaller than H.264 at the same quality; keeps transparency."
    options = WebmOptions

    def convert(self, job: ConversionJob) -> None:
        job = with_defaults(job)
        the_plan = plan(job, even=True)
        params: WebmOptions = job.params
        streams = [ordered(source_video(job, the_plan), params)]
        audio = {}
        if keeps_audio(job, params.audio == "opus"):
            streams.append(source_audio(job, the_plan))
            audio = {"c:a": "libopus", "b:a": OPUS_BITRATE}
        video = {
            "c:v": "libvpx-vp9", "pix_fmt": "yuva420p" if job.media.has_alpha else "yuv420p",
            "crf": params.crf, "b:v": 0,  # b:v 0: constant quality, not a crf-capped bitrate
            "deadline": "good", "cpu-used": params.cpu_used, "row-mt": 1,  # row-mt: both cores on one frame
        }
        output = ffmpeg.output(*streams, local_input(job.output_path), format="webm", **video,
                               **audio).overwrite_output()
        encode(job, the_plan, output, kind="WebM")


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [WebmFormat()]
