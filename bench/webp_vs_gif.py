"""Measure animated WebP against GIF: file size and SSIM of each on the same clips, per WebP quality.

Not run by the tests. Usage:  .venv/bin/python bench/webp_vs_gif.py [--qualities 50,75,90] [--out DIR]

- Sources: bench/gif_quality.py's (testsrc2, mandelbrot, noisy), plus a smooth gradient moving: 640x360,
  30 fps, 4 s, near-lossless, each the reference.
- Both are made by the real plugins at 480 px wide, 15 fps: the GIF with its defaults, the WebP at each quality.
- SSIM is gif_measure's: ffmpeg's ssim filter in RGB against the source put through the same fps and the most
  faithful scale. ffmpeg 5.1 cannot decode an animated WebP; Pillow (libwebp) decodes it into raw RGB frames.
- The table it prints is the one in docs/formats.md.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from PIL import Image, ImageSequence

from bench.gif_measure import REFERENCE_SCALER, ffmpeg, ssim
from bench.gif_quality import SOURCES, make_sources
from transmute.core.formats import ConversionJob
from transmute.core.params import parse_params
from transmute.core.plugins import get_format
from transmute.media.probe import probe
from transmute.plugins import webp as webp_plugin
from transmute.settings import LimitsConfig

CLIPS = {
    **SOURCES,
    # gif_quality's noisy clip with its random sources seeded: the same clip at every run.
    "noisy": SOURCES["noisy"].replace("speed=0.05:", "speed=0.05:seed=7:").replace("ratio=0.3:", "ratio=0.3:seed=7:"),
    "gradient": "gradients=size=640x360:rate=30:speed=0.03:duration=4:seed=7",
}
"""The clips: bench/gif_quality.py's, seeded, and a smooth gradient moving."""


def convert(source: Path, output: Path, **values) -> None:
    params = parse_params({"width": 480, "fps": 15, **values})
    limits = LimitsConfig.from_env().for_conversion()
    job = ConversionJob(input_path=source, output_path=output, params=params, media=probe(source, limits=limits),
                        limits=limits, work_dir=output.parent)
    get_format(params.format).convert(job)


def webp_frames(path: Path, raw: Path, fps: int = 15) -> tuple[int, int, int]:
    """Decode an animated WebP into raw rgb24 frames at `fps` in `raw`: (width, height, frames). libwebp's
    animation encoder merges frames that hardly differ into one shown longer: it is repeated for its duration."""
    with Image.open(path) as image, raw.open("wb") as out:
        count = 0
        for frame in ImageSequence.Iterator(image):
            picture = frame.convert("RGB").tobytes()
            end = round((frame.info["timestamp"] + frame.info["duration"]) * fps / 1000)
            repeats = max(1, end - count)
            out.write(picture * repeats)
            count += repeats
        return image.width, image.height, count


def webp_ssim(path: Path, source: Path, fps: int = 15) -> float:
    raw = path.with_suffix(".rgb")
    width, height, _ = webp_frames(path, raw)
    log = ffmpeg("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", str(raw),
                 "-i", str(source), "-filter_complex",
                 f"[1:v]fps={fps},scale={width}:-1:flags={REFERENCE_SCALER},format=rgb24[ref];"
                 "[0:v]format=rgb24[webp];[webp][ref]ssim", "-f", "null", "-")
    raw.unlink()
    return float(re.findall(r"All:([0-9.]+)", log)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qualities", default="50,60,75,85", help="WebP qualities to try (comma-separated)")
    parser.add_argument("--encoder", default="", help="libwebp_anim or libwebp (default: the plugin's choice)")
    parser.add_argument("--clips", default="", help="only these clips (comma-separated)")
    parser.add_argument("--out", type=Path, help="keep the files here (default: a temporary folder)")
    args = parser.parse_args()
    qualities = [int(q) for q in args.qualities.split(",")]
    if args.encoder:
        webp_plugin.encoder = lambda params, has_alpha: args.encoder
    SOURCES.update(CLIPS)
    with tempfile.TemporaryDirectory(prefix="webp-bench-") as temporary:
        folder = args.out or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"encoder: {args.encoder or 'the plugin choice'}")
        sources = make_sources(folder)
        print("| clip | GIF KiB | GIF SSIM | WebP quality | WebP KiB | WebP SSIM | WebP / GIF size |")
        print("|---|---|---|---|---|---|---|")
        for name, source in sources.items():
            if args.clips and name not in args.clips.split(","):
                continue
            gif = folder / f"{name}.gif"
            convert(source, gif)
            gif_size, gif_ssim = gif.stat().st_size, ssim(gif, source)
            for quality in qualities:
                webp = folder / f"{name}-q{quality}.webp"
                convert(source, webp, format="webp", quality=quality)
                size, score = webp.stat().st_size, webp_ssim(webp, source)
                print(f"| {name} | {gif_size / 1024:.0f} | {gif_ssim:.4f} | {quality} | {size / 1024:.0f} "
                      f"| {score:.4f} | {size / gif_size:.2f} |", flush=True)


if __name__ == "__main__":
    main()
