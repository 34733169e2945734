"""The built-in GIF format: an ordinary pluggy plugin, registered as one of core.plugins.DEFAULT_PLUGINS.

How a GIF is made (measurements and the reasons in docs/gif-quality.md). The shared chain is: trim (input
seeking) -> deinterlace (interlaced sources) -> speed (setpts) -> fps -> crop (`crop`) -> scale (lanczos, to the
display size in square pixels) -> grayscale (keeping alpha); see transmute.media.geometry, .crop and .filters.

transmute makes the palette itself (transmute.media.quantize: median cut and k-means over a sample of the frames'
pixels), at every level: ffmpeg's palettegen took seconds over the million colours of textured footage, where
this takes a tenth of a second (docs/gif-quality.md, "The levels' palette"). A first ffmpeg run writes the frames
(all of them when the disk holds them, see FRAMES_ON_DISK_MB, else a sample; with a palette per scene, Python
finds the scenes, transmute.media.scenes, in every frame on its way). Then:

- with a dither (the levels' bayer, or an error diffusion asked for by name): one palette, and a second ffmpeg run
  maps the kept frames (or the source decoded again) onto it with paletteuse -> reverse / boomerang -> GIF89a
  played `loop` times (for ever by default);
- without (`high_quality`, or `dither=none`): transmute maps them onto the palette, nearest in YCbCr
  (transmute.media.remap), holds still the pixels that barely change (high_quality, transmute.media.still_pixels)
  and writes the GIF itself as it goes (transmute.media.gif_writer: a frame whose palette is not the GIF's global
  one carries its own, and redraws only the pixels whose colour changes). With high_quality, each scene has a
  palette of its own, and a textured scene's stretches of about 8 frames have its palette refined to them
  (_stretch_palettes). See _encode_with_own_palette.

Nothing holds every frame in memory except reverse/boomerang, and those run after fps and scale so only small
output-size frames are buffered; `plan` refuses, before ffmpeg runs, a span whose frames would not fit in
TRANSMUTE_MAX_REVERSE_MB, or that has more than TRANSMUTE_MAX_OUTPUT_FRAMES.

Every ffmpeg input (the source, the kept frames and the palette) is a `file:` path opened with
`-protocol_whitelist file` (the source also with the demuxer allow-list of transmute.media.inputs and a
`max_pixels` cap), and every output a `file:` path, but for the frames' thumbnails, which ffmpeg writes to a pipe
of their own (`pipe:N`) that transmute reads (transmute.media.relay).

Then, with `lossy` or `colors`, gifsicle rewrites ffmpeg's GIF (transmute.media.gifsicle; the last
GIFSICLE_SHARE of the bar). With `max_size_kb`, that whole encode is repeated by the size search (fit_size,
SizeLadder; up to 4 encodes on one progress bar).

Boomerang plays the span forward then backward; the turn frame (the last forward frame) is not repeated,
so it has 2n - 1 frames for n forward frames.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import math
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import ffmpeg
import msgspec
from msgspec import Meta

from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.core.models import MediaInfo
from transmute.core.options import VideoOptions
from transmute.media.crop import CROP_ACCEPTS, CROP_PATTERN
from transmute.media.gif_writer import GifWriter
from transmute.media.gifsicle import gifsicle_installed, missing_gifsicle, run_gifsicle
from transmute.media.inputs import local_input
from transmute.media.process import ffmpeg_program
from transmute.media.quantize import (
    LARGER_SAMPLE,
    SAMPLE_PIXELS,
    load_array_libraries,
    make_palette,
    palette_error,
    read_frames,
    refine_palette,
    sample_pixels,
)
from transmute.media.relay import run_read
from transmute.media.remap import Remapper
from transmute.media.run import run_ffmpeg
from transmute.media.scenes import MIN_SCENE_FRAMES, colour_histograms, scene_starts
from transmute.media.size_search import Attempt, SizeNotReached, search_size
from transmute.media.still_pixels import StillPixels
from transmute.media.user_warnings import warn_if_short
from transmute.media.video import Plan, ordered, plan, source_video

Quality = Literal["low", "medium", "high"]
Dither = Literal[
    "bayer", "none", "floyd_steinberg", "sierra2", "sierra2_4a", "sierra3", "burkes", "atkinson", "heckbert"
]
QUALITIES: tuple[str, ...] = Quality.__args__
DITHERS: tuple[str, ...] = Dither.__args__


class GifOptions(VideoOptions, kw_only=True):
    """The GIF format's options: the shared video options, how its palette is made and applied, how often it
    plays, which part of the picture it shows, and how small it must be."""

    quality: Annotated[Quality, Meta(description="Palette size and encoder effort.")] = "medium"
    high_quality: Annotated[bool, Meta(description=(
        "Slower: the best palette and scaling, and no bayer pattern (`dither=bayer`, the default, becomes "
        "none)."))] = False
    dither: Annotated[Dither, Meta(description="How colours between palette entries are dithered.")] = "bayer"
    loop: Annotated[int, Meta(ge=0, le=65535, description=(
        "How many times the GIF plays: 0 for ever; N plays it N times in all (3: played 3 times, i.e. repeated "
        "twice; stored as NETSCAPE2.0 loop count N - 1, which viewers read as repeats; 1: no loop block)."))] = 0
    colors: Annotated[int, Meta(ge=2, le=256, description=(
        "Palette size (most colours in the GIF, one entry kept for transparency); overrides the size "
        "`quality` gives (low 64, medium 128, high 256). 2 and 3 need gifsicle."))] | None = None
    crop: Annotated[str, Meta(pattern=CROP_PATTERN, description=(
        "Keep part of the picture, before scaling (the output takes its proportions): a region x:y:w:h in "
        "the source's display pixels, or an aspect ratio w:h cut from the centre. A region past the picture "
        "fails the conversion (it is not clamped)."), extra={"accepts": CROP_ACCEPTS})] | None = None
    lossy: Annotated[int, Meta(ge=0, le=200, description=(
        "Lossy LZW compression with gifsicle (its --lossy scale): 0 off; 30-80 is usually hard to see and "
        "saves 20-40 % on busy pictures; 200 is the most. Needs gifsicle."))] = 0
    max_size_kb: Annotated[int, Meta(ge=1, le=1_048_576, description=(
        "Largest result, in KB (1 KB = 1024 bytes): up to 4 encodes lower lossy, fps, colours then width "
        "(docs/gif-quality.md, max_size_kb) and keep the best under it; fails, naming the smallest size "
        "reached, when even the smallest is larger."))] | None = None


FRAMES_ON_DISK_MB = 2048.0
"""Most MiB of output frames (4 bytes a pixel) written to the work folder's disk, so that they are
decoded once and read back one at a time for mapping, while that disk keeps as much again free (see
frames_fit_on_disk). Past it they are decoded a second time. 2 GiB holds 4.6 minutes of 480x270 at 15 fps, 87 s of
480x853 (a phone's portrait video). Reading them back instead of decoding again: a screen recording of 12.5 s at
480x394 took 1.89 s in all instead of 2.95 s (docs/gif-quality.md, "Frames kept on disk")."""


@dataclass(frozen=True)
class QualitySettings:
    """Palette and scaler settings of one quality level (chosen by measurement, see docs/gif-quality.md)."""

    max_colors: int
    """Palette entries, the transparent one included (as palettegen's max_colors counts)."""
    bayer_scale: int
    scale_flags: str = "lanczos"
    diff_mode: str = "rectangle"
    bayer_dither: str = "bayer"
    """The paletteuse dither used when the `dither` option is `bayer` (its default)."""
    via_yuv444: bool = False
    """Scale to yuva444p (alpha kept), then convert that to RGB: the same picture (issue 13's SSIM within 0.0011)
    as scaling straight to RGB with the full-chroma flags, which takes swscale's slow path: 10-50 % less time,
    GIFs 0.94-1.06x the size on real footage."""
    still_tolerance: int = 0
    """Without a dither: a pixel keeps the colour the GIF shows until its new one differs by more than this in
    R, G, B or alpha (transmute.media.still_pixels; 0: off): grain then stays transparent instead of being
    stored again."""
    flicker_tolerance: int = 0
    """With still_tolerance: a change the next frame undoes or takes partly back (noise flickering) is held too
    when it is no larger than this (0: off; see transmute.media.still_pixels)."""
    grain_tolerance: int = 0
    """With still_tolerance: a change past it and up to this is held too where it is alone in its neighbourhood
    (grain), and shown where its neighbours change with it (0: off; see transmute.media.still_pixels)."""
    noise_tolerance: int = 0
    """With still_tolerance: a change past the grain tolerance and up to this is held too where its neighbourhood's
    mean colour stays, on frames with such changes all over (noise; 0: off; see transmute.media.still_pixels)."""
    settle_tolerance: int = 0
    """With still_tolerance: each scene's first frame shows the pixels that stay within this of their mean over
    its first frames as that mean, unless the noise rule holds the scene's noise (0: off; see
    transmute.media.still_pixels)."""
    kmeans_rounds: int = 8
    """The palette (transmute.media.quantize, from a sample of the frames' pixels): median cut, then this many rounds
    of k-means."""
    palette_per_scene: bool = False
    """A palette for each scene (transmute.media.scenes), which its frames carry (local colour
    tables, transmute.media.gif_writer). One palette with `reverse` / `boomerang`. Where only a sample of the
    frames is kept (past FRAMES_ON_DISK_MB), the scenes are found in every frame as it passes and each scene's
    palette is made from the sampled frames it holds."""
    palette_frames: int = 0
    """With palette_per_scene: a textured scene (see _stretch_palettes) is cut into stretches of at least this many
    frames, each with its scene's palette refined towards its own pixels (0: one palette a scene)."""


QUALITY_SETTINGS: dict[str, QualitySettings] = {
    "low": QualitySettings(max_colors=64, bayer_scale=5),
    "medium": QualitySettings(max_colors=128, bayer_scale=5),
    "high": QualitySettings(max_colors=256, bayer_scale=5),
}
HIGH_QUALITY = QualitySettings(max_colors=256, bayer_scale=5,
                               scale_flags="lanczos+accurate_rnd+full_chroma_int+full_chroma_inp", diff_mode="none",
                               bayer_dither="none", via_yuv444=True, still_tolerance=4, grain_tolerance=5,
                               noise_tolerance=8, settle_tolerance=8, flicker_tolerance=16, palette_per_scene=True,
                               palette_frames=8)
"""`high_quality=true`: the best palette whatever `quality` says, and the most faithful conversion of the 4:2:0
source into RGB (chroma interpolated and scaled at full resolution, accurate rounding), at the source's size
too: +0.07 to +0.14 SSIM over `high` on sharp colour edges, +0.01 to +0.04 on gradients and noise. Then, to
reach gifski's quality at a smaller file in less time (issue 13; docs/gif-quality.md, "Against gifski"): no
dither instead of bayer (smaller, equal or better SSIM on every clip measured), a palette per scene (each made
as every level's: median cut and 8 rounds of k-means in YCbCr, +0.001 to +0.011 SSIM over palettegen, smaller
files, less time; "Palette by k-means") onto which transmute maps the frames nearest in YCbCr (up to +0.0023 over
paletteuse's RGB, never lower; one ffmpeg run fewer; "Remapping in YCbCr"), and pixels held still until they
change by more than 4 levels, or by more than 5 where the change is alone in its neighbourhood (grain stored once,
slow real changes followed; "Still pixels", "Grain told from motion"), or by up to 16 for one frame only (flickering
noise: 2-25 % smaller on real footage, SSIM within 0.0003; "Flickers"; grain falling part of the way back too:
6-17 % smaller with strong grain; "Grain that falls back"), or by up to 8 where the 3x3 neighbourhood's mean stays,
on frames with noise all over (a dim scene, a high ISO: 3-32 % smaller there; "Noise all over"); and each scene's
first frame shows its still pixels as their mean over the scene's first 8 frames, unless the noise rule holds that
scene's noise (fixed cameras 2-9 % smaller, SSIM up to +0.0012; "A settled first frame"); a textured scene's palette
refined every 8 frames or so (animation +0.0005 to +0.0023, 6-20 % larger; "A textured scene's palette every few
frames"). No lossy pass
unless `lossy` asks: on real footage gifsicle's --lossy=5 cost up to 0.0075 SSIM and as much time again as
ffmpeg."""


DITHER_FALLBACKS = {"sierra3": "sierra2", "burkes": "sierra2", "atkinson": "sierra2_4a"}
"""ffmpeg before 6.0 lacks these dithers; the nearest error-diffusion kernel it has is used instead."""


@cache
def _paletteuse_constants() -> frozenset[str]:
    """The named option values this ffmpeg's paletteuse accepts (dithers, diff modes)."""
    try:
        shown = subprocess.run([ffmpeg_program(), "-hide_banner", "-h", "filter=paletteuse"], capture_output=True,
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


MIN_PALETTE_COLORS = 4
"""The fewest entries a palette is made with (the transparent one included, as palettegen, which made none under 4,
counted them); `colors` 2 and 3 are reached with gifsicle's --colors."""


def settings_for(params: GifOptions) -> QualitySettings:
    """The palette and scaler settings of `params`: its quality level, with `colors` as the palette size."""
    settings = HIGH_QUALITY if params.high_quality else QUALITY_SETTINGS[params.quality]
    if params.colors is not None:
        settings = dataclasses.replace(settings, max_colors=max(params.colors, MIN_PALETTE_COLORS))
    return settings


def gif_frames(job: ConversionJob, the_plan: Plan, settings: QualitySettings):
    """The shared chain (transmute.media.video.source_video) with `settings`' scaler, in RGB."""
    video = source_video(job, the_plan, scale_flags=settings.scale_flags)
    if settings.via_yuv444:
        video = video.filter("format", "yuva444p").filter("scale", flags=settings.scale_flags).filter("format", "bgra")
    return video


def netscape_loop(loop: int) -> int:
    """ffmpeg's GIF `-loop` for the `loop` option. `loop` counts plays (0 = for ever); the NETSCAPE2.0 field
    ffmpeg writes counts repeats after the first play (0 = for ever), and -1 leaves the block out (one play)."""
    return 0 if loop == 0 else loop - 1 if loop > 1 else -1


def dither_of(params: GifOptions, settings: QualitySettings) -> str:
    """The dither `params` ask for at `settings`' level (its bayer_dither when `dither` is left at bayer)."""
    return settings.bayer_dither if params.dither == "bayer" else params.dither


def _paletteuse(video, palette, params: GifOptions, settings: QualitySettings, output: Path):
    """paletteuse of `video` with `palette` (a one-frame stream) -> the GIF89a file `output`, played `loop`
    times."""
    dither = dither_of(params, settings)
    use = {"dither": ffmpeg_dither(dither), "diff_mode": settings.diff_mode}
    if dither == "bayer":
        use["bayer_scale"] = settings.bayer_scale
    mapped = ffmpeg.filter([video, palette], "paletteuse", **use)
    return mapped.output(local_input(output), format="gif", loop=netscape_loop(params.loop)).overwrite_output()


def needs_gifsicle(params: GifOptions) -> str | None:
    """The option that needs gifsicle (`lossy` above 0, `colors` under 4), as `name=value`, or None."""
    if params.lossy > 0:
        return f"lossy={params.lossy}"
    if params.colors is not None and params.colors < MIN_PALETTE_COLORS:
        return f"colors={params.colors}"
    return None


def runs_gifsicle(params: GifOptions) -> bool:
    """Whether gifsicle rewrites ffmpeg's GIF: when needed (needs_gifsicle), and for any `colors` when
    installed, to drop the colour-table entries ffmpeg 5 pads to 256."""
    return needs_gifsicle(params) is not None or (params.colors is not None and gifsicle_installed())


def frames_fit_on_disk(the_plan: Plan, work_dir: Path) -> bool:
    """Whether the output frames (one copy: reverse and boomerang read them again in their order) fit
    FRAMES_ON_DISK_MB, with as much again left free on `work_dir`'s disk."""
    needed = the_plan.out_frames * the_plan.out_width * the_plan.out_height * 4
    return needed <= FRAMES_ON_DISK_MB * 1024 * 1024 and shutil.disk_usage(work_dir).free >= 2 * needed


def _estimate_seconds(job: ConversionJob, the_plan: Plan) -> float:
    """A rough guess of a run's decode time, for progress while ffmpeg's clock stands still."""
    media = job.media
    source_pixels = (media.fps or 30.0) * the_plan.span * media.width * media.height
    output_pixels = the_plan.out_frames * the_plan.out_width * the_plan.out_height
    return 0.2 + source_pixels / 200e6 + output_pixels / 50e6


SAMPLE_MB = 32.0
"""Most MiB of frames (4 bytes a pixel) the palette is sampled from: every n-th frame, n the smallest that fits
(whether the frames are all kept on disk or only the sample is: the same sample either way)."""
MIN_SAMPLED_SCENE_FRAMES = 16
"""Frames a scene has at least when its palette is sampled from every n-th frame (past SAMPLE_MB: about 4 s at
480x270; MIN_SCENE_FRAMES, 8, in shorter clips): about a second at 15 fps. At 8 there, real car gained 0.0008
SSIM and phone 0.0006 with 8 scenes instead of 5, but bbb50 lost 0.0004 and bottle 0.0006, each new palette
costing time (docs/gif-quality.md, "Scenes past the one-pass budget")."""
THUMB_SCALE = 3
"""High quality finds the scenes in every frame scaled down this many times each way, nearest pixel (a ninth of
its pixels, about as many as the every-7th-pixel histograms of transmute.media.scenes), read as ffmpeg decodes:
Python reads a ninth of each frame instead of all of it, and the frames kept on disk are not read for it."""
OWN_PALETTE_SHARE = 0.6
"""With transmute's own palette: share of the bar given to the first run (it decodes)."""


MIN_SCENE_SAMPLE = 15_000
"""Fewest pixels a scene's palette is made from (SAMPLE_PIXELS are shared by the scenes by their lengths)."""


def _palette_makers(sample, starts: list[int], step: int, settings: QualitySettings) -> list[Callable[[], bytes]]:
    """A function making each scene's palette (quantize.make_palette) from its pixels, with LARGER_SAMPLE times as
    many for a textured scene. `sample` holds every `step`-th frame; the scenes begin at the frame numbers
    `starts` (each holding one of those frames, see _sampled) and share SAMPLE_PIXELS by their lengths,
    MIN_SCENE_SAMPLE at least."""
    def maker(frames, count: int) -> Callable[[], bytes]:
        return lambda: make_palette(sample_pixels(frames, count=count), settings.max_colors, settings.kmeans_rounds,
                                    lambda: sample_pixels(frames, count=LARGER_SAMPLE * count))

    return [maker(frames, max(MIN_SCENE_SAMPLE, round(SAMPLE_PIXELS * len(frames) / len(sample))))
            for frames in _sampled_frames(sample, starts, step)]


def _sampled_frames(sample, starts: list[int], step: int) -> list:
    """The frames of `sample` (every `step`-th frame) that each part of the clip holds, the parts beginning at the
    frame numbers `starts` (each holding one of those frames, see _sampled)."""
    firsts = [_first_sampled(start, step) for start in starts]
    return [sample[first:end] for first, end in zip(firsts, [*firsts[1:], len(sample)], strict=True)]


STRETCH_CHECK = 4_000
STRETCH_TEXTURED_ERROR = 14.0
"""A stretch whose pixels its scene's palette draws with at least this mean squared error (quantize.palette_error,
measured on STRETCH_CHECK of them) gets a palette of its own: real animation's stretches measured 14-25 (painted
grass and fur), where a palette fitted to them gained up to 0.0023 SSIM; strong sensor noise 10-13 (bikes with
noise added), where it gained 0.0003 for 1.7 % more bytes; fixed cameras and screen recordings 1-11
(docs/gif-quality.md, "A textured scene's palette every few frames")."""
STRETCH_SAMPLE = 50_000
STRETCH_ROUNDS = 10
"""A textured stretch's palette: its scene's, moved towards this many of the stretch's pixels by this many rounds of
k-means (quantize.refine_palette; 4 rounds over 20,000 pixels gained a third as much, docs/gif-quality.md)."""


def _stretch_palettes(pool: ThreadPoolExecutor, scene_palettes: list[Future[bytes]], scenes: list[int],
                      stretches: list[int], sample, step: int) -> list[Future[bytes]]:
    """The palette of each stretch (`stretches`: their first frames, from _stretches), being made in `pool`: its
    scene's (`scene_palettes`, being made for `scenes`), refined towards the stretch's pixels where that scene's
    palette draws them with STRETCH_TEXTURED_ERROR or more. `sample` holds every `step`-th frame."""
    def stretch_palette(scene_palette: Future[bytes], frames) -> bytes:
        palette = scene_palette.result()
        if palette_error(palette, sample_pixels(frames, count=STRETCH_CHECK)) < STRETCH_TEXTURED_ERROR:
            return palette
        return refine_palette(palette, sample_pixels(frames, count=STRETCH_SAMPLE), STRETCH_ROUNDS)

    return [pool.submit(stretch_palette, scene_palettes[bisect.bisect_right(scenes, start) - 1], frames)
            for start, frames in zip(stretches, _sampled_frames(sample, stretches, step), strict=True)]


def _stretches(scenes: list[int], frame_count: int, frames: int) -> list[int]:
    """The first frames of stretches of about `frames` frames each (at least that many), each scene (`scenes`: their
    first frames, of `frame_count`) cut into equal ones."""
    starts = []
    for start, end in zip(scenes, [*scenes[1:], frame_count], strict=True):
        count = max(1, (end - start) // frames)
        starts += [start + (end - start) * number // count for number in range(count)]
    return starts


def _sampled(starts: list[int], step: int, frame_count: int) -> list[int]:
    """`starts` (scenes' first frames, of `frame_count`) without those whose scene holds no `step`-th frame,
    which the palette is sampled from: such a scene joins the one before."""
    ends = [*starts[1:], frame_count]
    return [0, *(start for start, end in zip(starts[1:], ends[1:], strict=True)
                 if _first_sampled(start, step) * step < end)]


def _first_sampled(frame: int, step: int) -> int:
    """The index, in a sample of every `step`-th frame, of the first sampled frame at or after `frame`."""
    return -(-frame // step)


def _add_histograms(histograms: list, thumbs: list) -> None:
    """Append the colour histogram of each of `thumbs` (BGRA frames) to `histograms`, and empty `thumbs`."""
    import numpy as np

    for thumb in thumbs:
        histograms.append(colour_histograms(np.frombuffer(thumb, np.uint8).reshape(1, -1, 4), pixel_step=1)[0])
    thumbs.clear()


def _play_order(count: int, params: GifOptions) -> list[int]:
    """The numbers of `count` frames in the order the GIF shows them (as transmute.media.video.ordered)."""
    order = list(range(count))[::-1] if params.reverse else list(range(count))
    return order + order[-2::-1] if params.boomerang else order


def _read_in_order(path: Path, frame_pixels: int, order: list[int]) -> Iterator:
    """The frames numbered `order` of the bgra rawvideo file `path` (each pixels x BGRA), read one at a time into
    the same buffer (a reader keeps a copy, not the frame), so the memory does not grow with the clip."""
    import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

    frame_bytes = frame_pixels * 4
    frame = bytearray(frame_bytes)
    pixels = np.frombuffer(frame, np.uint8).reshape(-1, 4)
    with path.open("rb", buffering=0) as file:
        for number in order:
            file.seek(number * frame_bytes)
            if file.readinto(frame) != frame_bytes:
                raise MediaError("A frame transmute kept on disk was cut short; try the conversion again.")
            yield pixels


PALETTE_THREADS = 2
"""Scenes' palettes made at once. The first scene is mapped as soon as its own palette is made, while the next
ones are made beside it: a textured animation's palettes take a third of its conversion (bbb, 3 scenes: 0.7 s)."""


class _Paletting:
    """bgra frames, given in the order the GIF shows them, as pal8 rawvideo frames (indices, then the palette):
    each with the palette of its stretch (`starts`: their first frames), nearest in YCbCr (transmute.media.remap);
    held() settles each scene's first frame (`scenes`: their first frames) and holds their still pixels too
    (`still`). `palettes` (one per stretch) are being made meanwhile, in other threads: a stretch's frames wait
    for its own."""

    def __init__(self, scenes: list[int], starts: list[int], palettes: list[Future[bytes]],
                 still: StillPixels) -> None:
        self.scenes = scenes
        self.starts = starts
        self.palettes = palettes
        self.palette = b""
        """The current stretch's."""
        self.remapper: Remapper | None = None
        """The current palette's (one at a time: each holds a 16 MiB table)."""
        self.still = still
        self.number = 0
        self.stretch = 0

    def held(self, frames: Iterable) -> Iterator[bytearray]:
        """`frames` (each pixels x BGRA) paletted, each scene's first settled, their still pixels held."""
        return self.still.held(map(self, self.still.settled(frames, self.scenes)))

    def _use(self, palette: bytes) -> None:
        """Map onto `palette` from now on (a stretch of a plain scene has its scene's palette, and keeps its table)."""
        if palette != self.palette:
            self.remapper = None  # its table goes before the next one is made
            self.palette, self.remapper = palette, Remapper(palette)

    def __call__(self, frame) -> bytearray:
        """The next frame (pixels x BGRA), paletted."""
        import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

        if self.remapper is None:
            self._use(self.palettes[0].result())
        while self.stretch + 1 < len(self.starts) and self.number >= self.starts[self.stretch + 1]:
            self.stretch += 1
            self._use(self.palettes[self.stretch].result())
        self.number += 1
        pixels = self.still.pixels
        paletted = bytearray(self.still.frame_bytes)
        np.frombuffer(paletted, np.uint8)[:pixels] = self.remapper.indices(frame)
        paletted[pixels:] = self.palette
        return paletted


def _write_frames(frames: Iterable[bytearray], writer: GifWriter, job: ConversionJob, count: int,
                  progress_span: tuple[float, float], remaining) -> None:
    """Write the pal8 `frames` (indices, then the palette; `count` of them) with `writer`, reporting progress
    within `progress_span` and stopping when the conversion is cancelled or out of time (`remaining()`)."""
    low, high = progress_span
    for number, frame in enumerate(frames, start=1):
        if job.cancel.is_set():
            raise ConversionCancelled("The conversion was cancelled.")
        left = remaining()
        if left is not None and left <= 0:
            raise ConversionTimeout("The conversion took longer than allowed and was stopped.")
        writer.add(frame)
        job.progress(low + (high - low) * number / max(count, 1))


def _encode_with_own_palette(job: ConversionJob, params: GifOptions, the_plan: Plan, settings: QualitySettings,
                             work_dir: Path, output: Path, progress_span: tuple[float, float],
                             remaining) -> MediaInfo | None:
    """The GIF `output` with transmute's own palette (transmute.media.quantize; one per scene with
    `palette_per_scene`), mapped by paletteuse when a dither is asked for (the levels' bayer, or one named), else
    by transmute.media.remap with still pixels held (transmute.media.still_pixels).

    A first run writes the frames as rawvideo: all of them when they fit on disk (frames_fit_on_disk) or the
    palette is sampled from all of them, else only those it is sampled from; with a palette per scene, every frame
    also goes, scaled down, to a pipe Python reads (THUMB_SCALE) to find the scenes. Python makes the palettes.
    With a dither, a second ffmpeg run maps the kept frames (or the source decoded again) with paletteuse and
    writes the GIF. Without, Python maps the kept frames, read back one at a time (or those of a second decoding
    run, transmute.media.relay), and writes them as it goes (transmute.media.gif_writer). What it wrote
    (GifWriter.written), unless ffmpeg wrote it."""
    low, high = progress_span
    middle = low + (high - low) * OWN_PALETTE_SHARE
    frame_pixels = the_plan.out_width * the_plan.out_height
    step = max(1, math.ceil(the_plan.out_frames * frame_pixels * 4 / (1024 * 1024) / SAMPLE_MB))
    # every frame kept, read back for mapping: they fit on disk, or the palette's sample is every frame anyway
    on_disk = step == 1 or frames_fit_on_disk(the_plan, work_dir)
    dithered = dither_of(params, settings) != "none"
    per_scene = settings.palette_per_scene and not params.reverse and not params.boomerang and not dithered
    palette_file = work_dir / "palette.bgra"
    frames = work_dir / ("frames.bgra" if on_disk else "sample.bgra")
    pool = ThreadPoolExecutor(PALETTE_THREADS, thread_name_prefix="palette")
    try:
        video = gif_frames(job, the_plan, settings)
        arrays_loaded = threading.Event()

        def load_arrays() -> None:  # numpy loads (0.1-0.2 s, once a process) while ffmpeg decodes
            try:
                load_array_libraries()
            finally:
                arrays_loaded.set()

        first_run = {"expected_duration": the_plan.out_duration, "limits": job.limits, "progress": job.progress,
                     "timeout": remaining(), "progress_span": (low, middle), "warn_if_short": False,
                     "meanwhile": load_arrays}
        histograms = []  # of every frame's colours, for the scenes' exact starts
        if per_scene:
            # from a point-sampled ninth of each frame's pixels, as ffmpeg decodes them (they are not kept)
            thumb_size = (max(1, the_plan.out_width // THUMB_SCALE), max(1, the_plan.out_height // THUMB_SCALE))
            split = video.split()
            kept = split[0] if on_disk else split[0].filter("framestep", step=step)

            def sample_and_thumbs(url: str):
                thumbs = split[1].filter("scale", *thumb_size, flags="neighbor")
                return ffmpeg.merge_outputs(kept.output(local_input(frames), format="rawvideo", pix_fmt="bgra"),
                                            thumbs.output(url, format="rawvideo", pix_fmt="bgra")).overwrite_output()

            def read(thumbs: Iterable[bytearray]) -> None:
                # Until numpy is loaded, copies wait: importing it here would wait for the loading thread while
                # ffmpeg, its pipe to this reader full, waits too.
                waiting: list[bytes] = []
                for thumb in thumbs:
                    if arrays_loaded.is_set():
                        waiting.append(thumb)
                        _add_histograms(histograms, waiting)
                    else:
                        waiting.append(bytes(thumb))
                _add_histograms(histograms, waiting)

            run_read(sample_and_thumbs, read, frame_bytes=thumb_size[0] * thumb_size[1] * 4, cancel=job.cancel,
                     first_run=first_run)
        else:
            kept = video if on_disk else video.filter("framestep", step=step)
            run_ffmpeg(kept.output(local_input(frames), format="rawvideo", pix_fmt="bgra").overwrite_output(),
                       cancel=job.cancel, **first_run)
        import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

        if not frames.is_file() or frames.stat().st_size < frame_pixels * 4:
            raise MediaError("ffmpeg wrote no GIF; the chosen span may hold no frame of the video.")
        written = read_frames(frames, frame_pixels)  # every frame (on_disk), else the sample
        sample = written[::step] if on_disk else written
        min_frames = MIN_SCENE_FRAMES if step == 1 else MIN_SAMPLED_SCENE_FRAMES
        scenes = (_sampled(scene_starts(np.asarray(histograms), min_frames), step, len(histograms)) if per_scene
                  else [0])

        # made PALETTE_THREADS at a time while the first scenes are mapped
        palettes = [pool.submit(make) for make in _palette_makers(sample, scenes, step, settings)]
        stretches = scenes
        if per_scene and settings.palette_frames:
            stretches = _sampled(_stretches(scenes, len(histograms), settings.palette_frames), step, len(histograms))
            palettes = _stretch_palettes(pool, palettes, scenes, stretches, sample, step)
        still = StillPixels(the_plan.out_width, the_plan.out_height, settings.still_tolerance,
                            settings.flicker_tolerance, settings.grain_tolerance, settings.noise_tolerance,
                            settings.settle_tolerance)
        out_seconds = the_plan.out_duration * (2 if params.boomerang else 1)
        writer_run = {"expected_duration": out_seconds, "limits": job.limits, "timeout": remaining(),
                      "frame_rate": params.fps}
        # the second decoding run's bar (or paletteuse's), and how it creeps while ffmpeg's reverse buffers the span
        reporting = {"progress": job.progress, "progress_span": (middle, high)}
        buffering = {"stall_estimate": _estimate_seconds(job, the_plan) if params.reverse or params.boomerang
                     else None, "stall_share": 0.5}
        paletting = _Paletting(scenes, stretches, palettes, still)
        if dithered:
            # paletteuse's own dither, asked for by name (its noise leaves no pixel still to hold)
            palette_file.write_bytes(palettes[0].result())
            palette = ffmpeg.input(local_input(palette_file), f="rawvideo", pix_fmt="bgra", s="16x16",
                                   protocol_whitelist="file").video
            if on_disk:  # square pixels, as the decoding chain says (the GIF records it)
                video = ffmpeg.input(local_input(frames), f="rawvideo", pix_fmt="bgra", framerate=params.fps,
                                     s=f"{the_plan.out_width}x{the_plan.out_height}",
                                     protocol_whitelist="file").filter("setsar", "1")
            run_ffmpeg(_paletteuse(ordered(video, params), palette, params, settings, output), cancel=job.cancel,
                       **writer_run, **reporting, **buffering)
            return None
        writer = GifWriter(output, the_plan.out_width, the_plan.out_height, params.fps, netscape_loop(params.loop),
                           own_transparency=job.media.has_alpha)
        with writer:
            if on_disk:  # the kept frames, put in order, mapped by transmute and written as they come
                order = _play_order(len(written), params)
                _write_frames(paletting.held(_read_in_order(frames, frame_pixels, order)), writer, job, len(order),
                              (middle, high), remaining)
            else:  # the frames decoded again, mapped by transmute and written on their way out of ffmpeg
                def decoded(url: str):
                    return ordered(gif_frames(job, the_plan, settings), params).output(url, format="rawvideo",
                                                                                       pix_fmt="bgra")

                def write(frames: Iterable[bytearray]) -> None:
                    for frame in paletting.held(np.frombuffer(frame, np.uint8).reshape(-1, 4) for frame in frames):
                        writer.add(frame)

                run_read(decoded, write, frame_bytes=frame_pixels * 4, cancel=job.cancel,
                         first_run={**writer_run, **reporting, **buffering})
        if on_disk:
            warn_if_short((writer.frame_count - 1) / params.fps, out_seconds, params.fps)
        return writer.written()
    finally:
        pool.shutdown(cancel_futures=True)  # a palette being made when the mapping failed ends first
        for path in [frames, palette_file]:
            path.unlink(missing_ok=True)


GIFSICLE_SHARE = 0.2
"""Share of an encode's progress given to gifsicle, when it runs after ffmpeg (it reports no progress)."""


def encode_gif(job: ConversionJob, params: GifOptions, output: Path, work_dir: Path,
               progress_span: tuple[float, float], remaining) -> tuple[int, MediaInfo | None]:
    """Write the GIF `params` describe to `output` (transmute's palette, then gifsicle when it runs),
    reporting progress within `progress_span`; its size in bytes, and its picture, frames and length when
    transmute wrote it (gifsicle keeps those). `remaining()`: seconds left, or None."""
    job = dataclasses.replace(job, params=params)
    the_plan = plan(job, crop=params.crop)
    settings = settings_for(params)
    low, high = progress_span
    post = runs_gifsicle(params)
    gif_top = low + (high - low) * (1 - GIFSICLE_SHARE) if post else high
    written = work_dir / "ffmpeg.gif" if post else output
    media = _encode_with_own_palette(job, params, the_plan, settings, work_dir, written, (low, gif_top), remaining)
    if not written.is_file() or written.stat().st_size == 0:
        written.unlink(missing_ok=True)
        raise MediaError("ffmpeg wrote no GIF; the chosen span may hold no frame of the video.")
    if post:
        small = params.colors if params.colors is not None and params.colors < MIN_PALETTE_COLORS else None
        run_gifsicle(written, output, limits=job.limits, lossy=params.lossy, colors=small, cancel=job.cancel,
                     timeout=remaining(), needed_for=needs_gifsicle(params) or "colors")
        written.unlink(missing_ok=True)
        job.progress(high)
    return output.stat().st_size, media


LADDER_LOSSY = 100
"""max_size_kb raises lossy up to this (gifsicle's scale; artefacts stay hard to see up to about 100)."""
LADDER_MIN_FPS = 5
LADDER_MIN_COLORS = 32
LADDER_MIN_WIDTH = 32
LADDER_FLOOR = 4.0
"""The ladder's last position: every stage at its end."""


@dataclass(frozen=True)
class SizeLadder:
    """The settings `max_size_kb` searches (docs/gif-quality.md, "max_size_kb"): from the asked ones at t = 0,
    one stage per unit of t, in this order: lossy up to LADDER_LOSSY (when gifsicle is installed), fps down to
    half (not under LADDER_MIN_FPS), colours down to LADDER_MIN_COLORS, width down to a quarter (not under
    LADDER_MIN_WIDTH); t = 4 is the floor. Each stage moves one setting; the ones before it stay at their end."""

    width: int
    fps: int
    colors: int
    lossy: int
    min_width: int
    min_fps: int
    min_colors: int
    max_lossy: int
    source_fps: float
    """Distinct frames a second of output can have (the source's rate times speed): an fps above it repeats
    frames, which GIF stores almost for free, so lowering fps towards it saves next to nothing."""

    @classmethod
    def of(cls, params: GifOptions, width: int, lossy_available: bool, source_fps: float | None) -> SizeLadder:
        """The ladder from `params`, whose planned output is `width` pixels wide, of a source shown at
        `source_fps` frames a second (None: unknown)."""
        colors = settings_for(params).max_colors if params.colors is None else params.colors
        return cls(width=width, fps=params.fps, colors=colors, lossy=params.lossy,
                   source_fps=source_fps * params.speed if source_fps else float(params.fps),
                   min_width=min(width, max(LADDER_MIN_WIDTH, width // 4)),
                   min_fps=min(params.fps, max(LADDER_MIN_FPS, params.fps // 2)),
                   min_colors=min(colors, LADDER_MIN_COLORS),
                   max_lossy=max(params.lossy, LADDER_LOSSY) if lossy_available else params.lossy)

    def at(self, t: float) -> tuple[int, int, int, int]:
        """(width, fps, colours, lossy) at position t: lossy linear, the others geometric within their stage."""
        stage = [min(max(t - index, 0.0), 1.0) for index in range(4)]
        lossy = round(self.lossy + (self.max_lossy - self.lossy) * stage[0])
        fps = round(self.fps * (self.min_fps / self.fps) ** stage[1])
        colors = round(self.colors * (self.min_colors / self.colors) ** stage[2])
        width = round(self.width * (self.min_width / self.width) ** stage[3])
        return width, fps, colors, lossy

    def model(self, t: float) -> float:
        """How much smaller (natural log of the size) position t should make the GIF: about the pixels
        written (width squared, frames), the bits a pixel takes (log2 of the colours), and gifsicle's lossy
        (measured: 30 -> 0.8x, 80 -> 0.6x, 200 -> 0.45x on a busy picture)."""
        width, fps, colors, lossy = self.at(t)
        frames = min(self.fps, self.source_fps) / min(fps, self.source_fps)
        return (math.log((1 + 0.008 * lossy) / (1 + 0.008 * self.lossy)) + 0.9 * math.log(frames)
                + math.log(math.log2(self.colors) / math.log2(colors)) + 2 * math.log(self.width / width))

    def params(self, params: GifOptions, t: float) -> GifOptions:
        """`params` at position t (only the settings the ladder moved are changed)."""
        width, fps, colors, lossy = self.at(t)
        changed: dict = {"max_size_kb": None, "lossy": lossy, "fps": fps}
        if colors != self.colors:
            changed["colors"] = colors
        if width != self.width:
            changed.update(width=width, keep_original_size=False)
        return msgspec.structs.replace(params, **changed)


def fit_size(job: ConversionJob, params: GifOptions, work_dir: Path, remaining) -> Attempt:
    """The best GIF of at most `max_size_kb` (see SizeLadder and transmute.media.size_search); MediaError
    naming the smallest size reached when even the ladder's floor is larger."""
    ladder = SizeLadder.of(params, plan(job, crop=params.crop).out_width, gifsicle_installed(), job.media.fps)

    def encode(t: float, path: Path, span: tuple[float, float]) -> int:
        return encode_gif(job, ladder.params(params, t), path, work_dir, span, remaining)[0]

    try:
        return search_size(encode, model=ladder.model, floor=LADDER_FLOOR, budget=params.max_size_kb * 1024,
                           work_dir=work_dir)
    except SizeNotReached as error:
        error.smallest.path.unlink(missing_ok=True)
        width, fps, colors, lossy = ladder.at(LADDER_FLOOR)
        raise MediaError(
            f"The GIF cannot be made as small as max_size_kb={params.max_size_kb} KB: the smallest it reached "
            f"was {error.smallest.size / 1024:.1f} KB ({width} px wide, {fps} fps, {colors} colours, lossy "
            f"{lossy}); choose a shorter span, a higher speed or a larger max_size_kb.") from None


class GifFormat(OutputFormat):
    name = "gif"
    extension = "gif"
    mime_type = "image/gif"
    description = "Animated GIF (GIF89a, loops forever unless `loop` says) with a palette made for the clip."
    options = GifOptions

    def convert(self, job: ConversionJob) -> None:
        if job.cancel.is_set():
            raise ConversionCancelled("The conversion was cancelled.")
        params: GifOptions = job.params
        needed = needs_gifsicle(params)
        if needed is not None and not gifsicle_installed():
            raise missing_gifsicle(needed)
        deadline = time.monotonic() + job.timeout if job.timeout is not None else None

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        output = Path(job.output_path)
        with contextlib.ExitStack() as stack:
            work_dir = job.work_dir
            if work_dir is None:
                work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="transmute-gif-"))
            try:
                if params.max_size_kb is None:
                    job.output_media = encode_gif(job, params, output, Path(work_dir), (0.0, 100.0), remaining)[1]
                else:
                    best = fit_size(job, params, Path(work_dir), remaining)
                    shutil.move(best.path, output)  # the work dir may be on another filesystem
                    job.progress(100.0)
            except ConversionTimeout:
                output.unlink(missing_ok=True)
                raise ConversionTimeout(
                    f"The conversion took longer than the {job.timeout:g} s allowed and was stopped; try a "
                    "shorter span, a smaller width or a lower fps.") from None
            except BaseException:
                output.unlink(missing_ok=True)
                raise


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [GifFormat()]
