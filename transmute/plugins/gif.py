"""The built-in GIF format: an ordinary pluggy plugin, registered as one of core.plugins.DEFAULT_PLUGINS.

How a GIF is made (measurements and the reasons in docs/gif-quality.md). The shared chain is: trim (input
seeking) -> deinterlace (interlaced sources) -> speed (setpts) -> fps -> scale (lanczos, to the display size in
square pixels) -> grayscale (keeping alpha); see transmute.media.geometry and transmute.media.filters.
Then, when the frames the graph must buffer fit ONE_PASS_BUDGET_MB (see `one_pass_mb`):

- one ffmpeg run: chain -> split -> palettegen, and -> reverse / boomerang -> paletteuse with that palette
  -> GIF89a that loops forever. The source is decoded once, but every output frame waits in memory until
  the palette exists (at the end of the input), and ffmpeg's progress clock stands still until then:
  progress creeps meanwhile (run_ffmpeg's stall_estimate) up to ONE_PASS_STALL_SHARE of the bar.

otherwise (long or large outputs), two ffmpeg runs, whose memory does not grow with the clip:

1. palette pass: chain -> palettegen, written as a PNG into the job's work dir. Progress 0..PALETTE_SHARE %.
2. encode pass: chain -> reverse / boomerang -> paletteuse with that palette -> GIF89a that loops forever.
   Progress PALETTE_SHARE..100 %.

Both give the same GIF (same palette, same paletteuse settings). Nothing else holds every frame except
reverse/boomerang, and those run after fps and scale so only small output-size frames are buffered; `plan`
refuses, before ffmpeg runs, a span whose frames would not fit in TRANSMUTE_MAX_REVERSE_MB, or that has
more than TRANSMUTE_MAX_OUTPUT_FRAMES.

Every ffmpeg input (the source and the palette) is a `file:` path opened with `-protocol_whitelist file`
(the source also with the demuxer allow-list of transmute.media.inputs), both with a `max_pixels` cap, and
every output a `file:` path.

Boomerang plays the span forward then backward; the turn frame (the last forward frame) is not repeated,
so it has 2n - 1 frames for n forward frames.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import ffmpeg
from msgspec import Meta

from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.formats import ConversionJob, ConversionLimits, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.core.options import VideoOptions
from transmute.media.inputs import local_input
from transmute.media.process import FFMPEG
from transmute.media.run import run_ffmpeg
from transmute.media.video import Plan, ordered, plan, source_video

Quality = Literal["low", "medium", "high"]
Dither = Literal[
    "bayer", "none", "floyd_steinberg", "sierra2", "sierra2_4a", "sierra3", "burkes", "atkinson", "heckbert"
]
QUALITIES: tuple[str, ...] = Quality.__args__
DITHERS: tuple[str, ...] = Dither.__args__


class GifOptions(VideoOptions, kw_only=True):
    """The GIF format's options: the shared video options, plus how its palette is made and applied."""

    quality: Annotated[Quality, Meta(description="Palette size and encoder effort.")] = "medium"
    high_quality: Annotated[bool, Meta(description="Slower: the best palette and scaling.")] = False
    dither: Annotated[Dither, Meta(description="How colours between palette entries are dithered.")] = "bayer"


PALETTE_SHARE = 40.0
"""Two passes: percent of the progress bar given to the palette pass (about 40 % of the time at 480 px)."""
ONE_PASS_BUDGET_MB = 96.0
"""Most memory (MiB: output frames at 4 bytes a pixel, reverse / boomerang copies included) the one-pass graph
may buffer; past it, or past TRANSMUTE_MAX_REVERSE_MB, the GIF is made in two passes. 96 MiB holds 12 s of
480x270 at 15 fps (the default output of a 720p clip). Measured, Python and ffmpeg summed: 89 MiB buffered
peaked at 272 MiB (720p source) and 269 MiB (1080p); 126 MiB at 306 and 350 MiB; 253 MiB at 442 MiB, past
the 400 MB of benchmark figure 5 (docs/gif-quality.md)."""
ONE_PASS_STALL_SHARE = 0.75
"""One pass: share of the bar progress may creep to while the palette is built (decode and palettegen took
75-80 % of that run at 480 px; the rest, paletteuse and the GIF encoder, moves ffmpeg's clock)."""


@dataclass(frozen=True)
class QualitySettings:
    """Palette and scaler settings of one quality level (chosen by measurement, see docs/gif-quality.md)."""

    max_colors: int
    stats_mode: str
    bayer_scale: int
    scale_flags: str = "lanczos"
    diff_mode: str = "rectangle"


QUALITY_SETTINGS: dict[str, QualitySettings] = {
    "low": QualitySettings(max_colors=64, stats_mode="diff", bayer_scale=5),
    "medium": QualitySettings(max_colors=128, stats_mode="full", bayer_scale=5),
    "high": QualitySettings(max_colors=256, stats_mode="full", bayer_scale=5),
}
HIGH_QUALITY = QualitySettings(max_colors=256, stats_mode="full", bayer_scale=5,
                               scale_flags="lanczos+accurate_rnd+full_chroma_int+full_chroma_inp", diff_mode="none")
"""`high_quality=true`: the best palette whatever `quality` says, and the most faithful conversion of the 4:2:0
source into RGB (chroma interpolated and scaled at full resolution, accurate rounding), at the source's size
too. Against the source: +0.07 to +0.14 SSIM over `high` on sharp colour edges, +0.01 to +0.04 on gradients
and noise; ~20 % slower at 480 px from 720p, about twice as slow at full size (docs/gif-quality.md)."""


DITHER_FALLBACKS = {"sierra3": "sierra2", "burkes": "sierra2", "atkinson": "sierra2_4a"}
"""ffmpeg before 6.0 lacks these dithers; the nearest error-diffusion kernel it has is used instead."""


@cache
def _paletteuse_constants() -> frozenset[str]:
    """The named option values this ffmpeg's paletteuse accepts (dithers, diff modes)."""
    try:
        shown = subprocess.run([FFMPEG, "-hide_banner", "-h", "filter=paletteuse"], capture_output=True,
                               text=True, timeout=10, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(re.findall(r"^\s+(\w+)\s+-?\d+\s+\.\.F", shown, flags=re.MULTILINE))


def ffmpeg_dither(dither: str) -> str:
    """The paletteuse dither for a `dither` parameter, falling back on older ffmpeg (see DITHER_FALLBACKS)."""
    known = _paletteuse_constants()
    if dither in DITHER_FALLBACKS and known and dither not in known:
        return DITHER_FALLBACKS[dither]
    return dither


def settings_for(params: GifOptions) -> QualitySettings:
    return HIGH_QUALITY if params.high_quality else QUALITY_SETTINGS[params.quality]


def _palettegen(video, settings: QualitySettings):
    return video.filter("palettegen", max_colors=settings.max_colors, stats_mode=settings.stats_mode)


def _paletteuse(video, palette, params: GifOptions, settings: QualitySettings, output: Path | str):
    """paletteuse of `video` with `palette` (a one-frame stream) -> the GIF89a output, looping forever."""
    use = {"dither": ffmpeg_dither(params.dither), "diff_mode": settings.diff_mode}
    if params.dither == "bayer":
        use["bayer_scale"] = settings.bayer_scale
    return (
        ffmpeg.filter([video, palette], "paletteuse", **use)
        .output(local_input(output), format="gif", loop=0)
        .overwrite_output()
    )


def one_pass_mb(the_plan: Plan, params: GifOptions) -> float:
    """MiB the one-pass graph holds at its peak: every output frame waits for the palette (4 bytes a pixel,
    paletteuse's bgra), and reverse / boomerang each hold the span again."""
    copies = 1 + int(params.reverse) + int(params.boomerang)
    return copies * the_plan.out_frames * the_plan.out_width * the_plan.out_height * 4 / (1024 * 1024)


def uses_one_pass(the_plan: Plan, params: GifOptions, limits: ConversionLimits) -> bool:
    """One ffmpeg pass when its buffer fits ONE_PASS_BUDGET_MB and the operator's TRANSMUTE_MAX_REVERSE_MB
    (the cap on memory a filter may buffer); two passes otherwise."""
    return one_pass_mb(the_plan, params) <= min(ONE_PASS_BUDGET_MB, limits.max_reverse_mb)


def _estimate_seconds(job: ConversionJob, the_plan: Plan) -> float:
    """A rough guess of one pass's decode time, for progress while ffmpeg's clock stands still."""
    media = job.media
    source_pixels = (media.fps or 30.0) * the_plan.span * media.width * media.height
    output_pixels = the_plan.out_frames * the_plan.out_width * the_plan.out_height
    return 0.2 + source_pixels / 200e6 + output_pixels / 50e6


class GifFormat(OutputFormat):
    name = "gif"
    extension = "gif"
    mime_type = "image/gif"
    description = "Animated GIF (GIF89a, loops forever) with a palette made for the clip."
    options = GifOptions

    def convert(self, job: ConversionJob) -> None:
        if job.cancel.is_set():
            raise ConversionCancelled("The conversion was cancelled.")
        the_plan = plan(job)
        settings = settings_for(job.params)
        deadline = time.monotonic() + job.timeout if job.timeout is not None else None

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        estimate = _estimate_seconds(job, the_plan)
        out_seconds = the_plan.out_duration * (2 if job.params.boomerang else 1)
        with contextlib.ExitStack() as stack:
            try:
                if uses_one_pass(the_plan, job.params, job.limits):
                    split = source_video(job, the_plan, scale_flags=settings.scale_flags).split()
                    gif = _paletteuse(ordered(split[1], job.params), _palettegen(split[0], settings),
                                      job.params, settings, job.output_path)
                    run_ffmpeg(gif, expected_duration=out_seconds, limits=job.limits, progress=job.progress,
                               cancel=job.cancel, timeout=remaining(), progress_span=(0.0, 100.0),
                               stall_estimate=estimate, stall_share=ONE_PASS_STALL_SHARE, frame_rate=job.params.fps)
                else:
                    work_dir = job.work_dir
                    if work_dir is None:
                        work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="transmute-gif-"))
                    palette = Path(work_dir) / "palette.png"
                    palette_pass = (
                        _palettegen(source_video(job, the_plan, scale_flags=settings.scale_flags), settings)
                        .output(local_input(palette), vframes=1, update=1)
                        .overwrite_output()
                    )
                    run_ffmpeg(palette_pass, expected_duration=the_plan.out_duration, limits=job.limits,
                               progress=job.progress, cancel=job.cancel, timeout=remaining(),
                               progress_span=(0.0, PALETTE_SHARE), stall_estimate=estimate, stall_share=0.95,
                               warn_if_short=False)

                    palette_input = ffmpeg.input(local_input(palette), f="png_pipe", protocol_whitelist="file",
                                                 max_pixels=65536)  # a 16x16 palette (the PNG
                    # decoder counts its width in bytes: 64x16), with room; it is our own file
                    frames = source_video(job, the_plan, scale_flags=settings.scale_flags)
                    gif = _paletteuse(ordered(frames, job.params), palette_input.video, job.params, settings,
                                      job.output_path)
                    buffered = job.params.reverse or job.params.boomerang
                    run_ffmpeg(gif, expected_duration=out_seconds, limits=job.limits, progress=job.progress,
                               cancel=job.cancel, timeout=remaining(), progress_span=(PALETTE_SHARE, 100.0),
                               stall_estimate=estimate if buffered else None, stall_share=0.5,
                               frame_rate=job.params.fps)
            except ConversionTimeout:
                Path(job.output_path).unlink(missing_ok=True)
                raise ConversionTimeout(
                    f"The conversion took longer than the {job.timeout:g} s allowed and was stopped; try a "
                    "shorter span, a smaller width or a lower fps.") from None
            except BaseException:
                Path(job.output_path).unlink(missing_ok=True)
                raise
        if not Path(job.output_path).is_file() or Path(job.output_path).stat().st_size == 0:
            raise MediaError("ffmpeg wrote no GIF; the chosen span may hold no frame of the video.")


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [GifFormat()]
