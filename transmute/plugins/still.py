"""The built-in `jpg` and `png` still formats: one frame of the video, at a given time or the most representative.

With `time`: the frame a player shows at that second (the last frame starting at or before it), in one ffmpeg
run that seeks to just before it and writes the first frame decoded from there.

Without: the most representative frame of the first THUMBNAIL_SECONDS, as ffmpeg's `thumbnail` filter picks it
(the frame whose colour histogram is closest to the average of the batch: not a black fade, not a flash). Two
runs: the analysis decodes the window scaled down to ANALYSIS_WIDTH (the filter holds every frame of its batch,
so small frames keep its memory small whatever the source) and writes the chosen frame's timestamp (a `framecrc`
line in the source's time base); the second run takes that frame at full quality, as with `time`. The picture
is never taken from the analysis: `thumbnail` works in RGB without alpha, and a PNG keeps the source's alpha.

Size: the source's display size (square pixels) unless `width` says otherwise. A still is one picture, cheap at
any size, usually wanted as the poster or the frame itself, where a smaller default would throw detail away;
a client wanting a thumbnail asks for its width.
"""

from __future__ import annotations

import math
import time as clock
from pathlib import Path
from typing import Annotated

import ffmpeg
from msgspec import Meta

from transmute.core.errors import ConversionCancelled, MediaError
from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.core.options import FormatOptions, Width
from transmute.media.cleanup import output_removed_on_failure
from transmute.media.filters import decoder_options, deinterlaced
from transmute.media.geometry import output_size
from transmute.media.inputs import local_input, seek_options
from transmute.media.limits import check_decode, input_options
from transmute.media.run import run_ffmpeg

THUMBNAIL_SECONDS = 10.0
"""Without `time`, the frame is chosen among the first this many seconds (a poster frame comes early; the
analysis decodes this much of the source)."""
THUMBNAIL_MAX_FRAMES = 300
"""...and among at most this many frames (10 s at 30 fps): the `thumbnail` filter's batch."""
ANALYSIS_WIDTH = 160
"""Width the analysis compares frames at: a histogram barely changes with size, and the batch holds
THUMBNAIL_MAX_FRAMES of them (300 frames of 160x90 RGB: 13 MB)."""
ANALYSIS_SHARE = 80.0
"""Percent of the progress bar given to the analysis run (it decodes the window; the take decodes a frame)."""
SEEK_MARGIN = 0.001
"""Seconds after the frame before the wanted one where the take seeks to: past that frame, before the wanted."""


class StillOptions(FormatOptions, kw_only=True):
    """The options of a still: which frame, at what width."""

    time: Annotated[float, Meta(ge=0, le=86_400, description=(
        "Second of the source whose frame to take; without it, the most representative frame of the first "
        f"{THUMBNAIL_SECONDS:g} s."), extra={"accepts": "a number of seconds from 0 to 86400"})] | None = None
    width: Annotated[Width, Meta(description="Output width in pixels, the height keeping the aspect ratio; the "
                                             "source's own display width when not given.")] | None = None


class JpgOptions(StillOptions, kw_only=True):
    """The options of a JPEG still: the frame, its width, and the JPEG quality."""

    quality: Annotated[int, Meta(ge=1, le=100, description="JPEG quality: 100 is the best and largest file.")] = 90


class PngOptions(StillOptions, kw_only=True):
    """The options of a PNG still: the frame and its width (PNG is lossless: no quality to choose)."""


def jpeg_qscale(quality: int) -> int:
    """The mjpeg encoder's -q:v (2 best .. 31 worst) for a quality of 1 (worst) .. 100 (best)."""
    return round(2 + (100 - quality) * 29 / 99)


class StillFormat(OutputFormat):
    """One frame of the video as a picture file; subclasses choose the encoder."""

    options = StillOptions

    def encoder_options(self, job: ConversionJob) -> dict[str, object]:
        raise NotImplementedError

    def convert(self, job: ConversionJob) -> None:
        if job.cancel.is_set():
            raise ConversionCancelled("The conversion was cancelled.")
        params, media = job.params, job.media
        if params.time is not None and params.time >= media.duration:
            raise MediaError(f"The time ({params.time:g} s) is at or beyond the end of the video "
                             f"({media.duration:g} s); choose a time before {media.duration:g} s.")
        width, height = output_size(media, width=params.width, keep_original_size=params.width is None)
        deadline = clock.monotonic() + job.timeout if job.timeout is not None else None

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - clock.monotonic())

        with output_removed_on_failure(job, "try a still at a given time, or a smaller width"):
            at, take_span = params.time, (0.0, 100.0)
            if at is None:
                at = self._representative_time(job, remaining())
                take_span = (ANALYSIS_SHARE, 100.0)
            frame = 1.0 / media.fps if media.fps else 1 / 30
            seek = max(0.0, at - frame + SEEK_MARGIN)
            check_decode(media, at - seek + frame, job.limits)
            source = ffmpeg.input(local_input(job.input_path), **seek_options(seek), **input_options(job.limits),
                                  **decoder_options(media))
            video = deinterlaced(source.video, media)
            video = video.filter("scale", width, height, flags="lanczos").filter("setsar", "1")
            still = (video.output(local_input(job.output_path), vframes=1, format="image2", update=1,
                                  **self.encoder_options(job))
                     .overwrite_output())
            # One frame: ffmpeg's clock says nothing useful, progress creeps over the (short) decode instead.
            run_ffmpeg(still, expected_duration=0, limits=job.limits, progress=job.progress, cancel=job.cancel,
                       timeout=remaining(), progress_span=take_span, stall_estimate=0.3, stall_share=0.9,
                       warn_if_short=False)
            if not Path(job.output_path).is_file() or Path(job.output_path).stat().st_size == 0:
                raise MediaError(f"ffmpeg found no frame at {at:g} s; the video may be damaged there.")
        job.metadata["time"] = round(at, 3)

    def _representative_time(self, job: ConversionJob, timeout: float | None) -> float:
        """The timestamp of the frame `thumbnail` picks among the first THUMBNAIL_SECONDS."""
        media = job.media
        window = min(media.duration, THUMBNAIL_SECONDS)
        check_decode(media, window, job.limits)
        frames = min(THUMBNAIL_MAX_FRAMES, max(1, math.ceil(window * (media.fps or 30)) + 1))
        width, height = output_size(media, width=min(ANALYSIS_WIDTH, media.display_width), keep_original_size=False)
        found = Path(job.work_dir or Path(job.output_path).parent) / "thumbnail.framecrc"
        source = ffmpeg.input(local_input(job.input_path), t=f"{window:.6f}", **input_options(job.limits),
                              **decoder_options(media))
        analysis = (
            deinterlaced(source.video, media)
            .filter("scale", max(2, width), max(2, height), flags="bilinear")
            .filter("thumbnail", n=frames)
            # framecrc: one line per frame, its pts in microseconds (not frame ticks: the default), no picture.
            # A ratio, because the source's own time base is -1 before ffmpeg 7 and "demux" since.
            .output(local_input(found), vframes=1, format="framecrc", vcodec="rawvideo", enc_time_base="1/1000000")
            .overwrite_output()
        )
        estimate = 0.2 + window * (media.fps or 30) * media.width * media.height / 300e6
        try:
            run_ffmpeg(analysis, expected_duration=0, limits=job.limits, progress=job.progress, cancel=job.cancel,
                       timeout=timeout, progress_span=(0.0, ANALYSIS_SHARE), stall_estimate=estimate,
                       stall_share=0.95, warn_if_short=False)
            return _first_frame_time(found.read_text())
        finally:
            found.unlink(missing_ok=True)


def _first_frame_time(framecrc: str) -> float:
    """Seconds of the first frame a framecrc listing shows (`#tb 0: 1/12800`, then `0, dts, pts, ...`)."""
    time_base, pts = None, None
    for line in framecrc.splitlines():
        if line.startswith("#tb 0:"):
            numerator, denominator = line.split(":", 1)[1].strip().split("/")
            time_base = int(numerator) / int(denominator)
        elif line and not line.startswith("#") and pts is None:
            pts = int(line.split(",")[2])
    if time_base is None or pts is None:
        raise MediaError("ffmpeg found no frame in the first seconds of the video; it may be damaged.")
    return max(0.0, pts * time_base)


class JpgFormat(StillFormat):
    name = "jpg"
    extension = "jpg"
    mime_type = "image/jpeg"
    description = "One frame as a JPEG picture: at a given time, or the most representative one."
    options = JpgOptions

    def encoder_options(self, job: ConversionJob) -> dict[str, object]:
        # mjpeg picks its full-range YUV format itself; without -q:v it would aim at a tiny bit rate.
        return {"vcodec": "mjpeg", "q:v": jpeg_qscale(job.params.quality)}


class PngFormat(StillFormat):
    name = "png"
    extension = "png"
    mime_type = "image/png"
    description = "One frame as a lossless PNG picture (keeping transparency): at a given time, or the most " \
                  "representative one."
    options = PngOptions

    def encoder_options(self, job: ConversionJob) -> dict[str, object]:
        return {"vcodec": "png", "pix_fmt": "rgba" if job.media.has_alpha else "rgb24"}


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [JpgFormat(), PngFormat()]
