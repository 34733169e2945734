"""The built-in `mp3` format: the video's sound track (its first audio stream), or a span of it, as an MP3.

One ffmpeg run: the span seeked on the input, the audio encoded by LAME (libmp3lame) at a constant bit rate,
with a Xing header so players know the length. The source's tags are not copied: a phone's video carries
the place it was filmed, which has no business in an extracted sound track.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import ffmpeg
from msgspec import Meta

from transmute.core.errors import ConversionCancelled, InvalidParameter, MediaError
from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.core.options import EndTime, FormatOptions, StartTime
from transmute.media.cleanup import output_removed_on_failure
from transmute.media.inputs import local_input, seek_options
from transmute.media.limits import input_options
from transmute.media.run import run_ffmpeg

Bitrate = Literal[96, 128, 160, 192, 256, 320]
"""MP3's usual constant bit rates, kbit/s (LAME accepts 8-320 in steps the format fixes; these are the ones
people tell apart: speech, music, near-transparent)."""
NO_AUDIO = "This video has no audio track; mp3 needs one."


class Mp3Options(FormatOptions, kw_only=True):
    """The options of an MP3: which span of the sound track, at which bit rate (no picture, so no size or rate)."""

    start_time: StartTime = 0.0
    end_time: EndTime | None = None
    bitrate: Annotated[Bitrate, Meta(description="Constant bit rate in kbit/s: 128 for speech, 192 for music, "
                                                 "320 the best MP3 has.")] = 192

    def __post_init__(self) -> None:
        if self.end_time is not None and self.end_time <= self.start_time:
            raise InvalidParameter(
                "end_time",
                f"'end_time' must be greater than 'start_time' ({self.start_time:g}); got {self.end_time:g}.",
            )
        self.start_time += 0.0  # -0 is 0: no "-0" in the stored options or ffmpeg's arguments


class Mp3Format(OutputFormat):
    name = "mp3"
    extension = "mp3"
    mime_type = "audio/mpeg"
    description = "The video's sound track (or a span of it) as an MP3 (LAME, constant bit rate)."
    options = Mp3Options

    def convert(self, job: ConversionJob) -> None:
        if job.cancel.is_set():
            raise ConversionCancelled("The conversion was cancelled.")
        params, media = job.params, job.media
        if not media.has_audio:
            raise MediaError(NO_AUDIO)
        if params.start_time >= media.duration:
            raise MediaError(f"The start time ({params.start_time:g} s) is at or beyond the end of the video "
                             f"({media.duration:g} s); choose a start time before {media.duration:g} s.")
        end = media.duration if params.end_time is None else min(params.end_time, media.duration)
        span = end - params.start_time
        source = ffmpeg.input(local_input(job.input_path), **seek_options(params.start_time), t=f"{span:.6f}",
                              **input_options(job.limits))
        mp3 = (
            source["a:0"]
            .output(local_input(job.output_path), format="mp3", acodec="libmp3lame", audio_bitrate=f"{params.bitrate}k",
                    map_metadata=-1, write_xing=1)
            .overwrite_output()
        )
        with output_removed_on_failure(job, "try a shorter span"):
            run_ffmpeg(mp3, expected_duration=span, limits=job.limits, progress=job.progress, cancel=job.cancel,
                       timeout=job.timeout)
            if not Path(job.output_path).is_file() or Path(job.output_path).stat().st_size == 0:
                raise MediaError("ffmpeg wrote no MP3; the sound track may hold nothing in the chosen span.")


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [Mp3Format()]
