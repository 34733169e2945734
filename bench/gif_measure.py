"""What every GIF measurement of the bench shares: running ffmpeg, converting with the real plugin, and SSIM
against the most faithful picture of the source (bench/gif_quality.py, bench/gifski.py)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from transmute.core.formats import ConversionJob
from transmute.core.params import parse_params
from transmute.media.probe import probe
from transmute.plugins import gif as gif_plugin
from transmute.settings import LimitsConfig


def ffmpeg(*args: str) -> str:
    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", *args], capture_output=True, text=True,
                          check=True)
    return done.stderr


REFERENCE_SCALER = "lanczos+accurate_rnd+full_chroma_int+full_chroma_inp"
"""How the source is scaled into the picture SSIM compares a GIF with: the most faithful RGB picture of a
4:2:0 source (chroma interpolated, not repeated). Plain `lanczos` repeats chroma samples, which blurs colour
edges; measured against it, a GIF made with the accurate scaler looked worse than one made without."""


def picture_size(gif: Path) -> tuple[int, int]:
    """Width and height of the picture in `gif` (a GIF, or any image or video ffprobe reads)."""
    shown = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0",
                            str(gif)], capture_output=True, text=True, check=True).stdout
    width, height = shown.strip().split(",")[:2]
    return int(width), int(height)


def _ssim(gif: Path, source: Path, fps: int, scaler: str, pix_fmt: str) -> float:
    """SSIM (all frames) of `gif` against `source` through `fps` and `scaler` to the GIF's own size (so an odd
    scaled height cannot differ by a row), both in `pix_fmt`."""
    width, height = picture_size(gif)
    log = ffmpeg("-i", str(gif), "-i", str(source), "-filter_complex",
                 f"[1:v]fps={fps},scale={width}:{height}:flags={scaler},format={pix_fmt}[ref];"
                 f"[0:v]format={pix_fmt}[gif];[gif][ref]ssim", "-f", "null", "-")
    return float(re.findall(r"All:([0-9.]+)", log)[-1])


def ssim(gif: Path, source: Path, fps: int = 15) -> float:
    """SSIM against the faithful rgb24 picture of the source at the GIF's fps and size."""
    return _ssim(gif, source, fps, REFERENCE_SCALER, "rgb24")


ISSUE_SCALER = "lanczos"
"""Issue 13's reference: the source through the GIF's fps and a plain lanczos scale, compared in yuv444p (chroma
scaled at full size there, so this reference is not blurred the way plain lanczos to rgb24 is)."""


def ssim_yuv444(gif: Path, source: Path, fps: int = 15) -> float:
    """SSIM as issue 13 measures it: all frames, against the source through the same fps and a lanczos scale to
    the GIF's size, both in yuv444p (Y, U and V weigh alike, so colour counts for two thirds)."""
    return _ssim(gif, source, fps, ISSUE_SCALER, "yuv444p")


def convert(source: Path, output: Path, **values) -> float:
    params = parse_params({"width": 480, "fps": 15, **values})
    limits = LimitsConfig.from_env().for_conversion()
    job = ConversionJob(input_path=source, output_path=output, params=params, media=probe(source, limits=limits),
                        limits=limits, work_dir=output.parent)
    started = time.monotonic()
    gif_plugin.GifFormat().convert(job)
    return time.monotonic() - started
