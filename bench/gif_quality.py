"""Measure GIF settings: file size and SSIM per quality level, and one-pass vs two-pass time and memory.

Not run by the tests. Usage:  .venv/bin/python -m bench.gif_quality [--grid] [--gifski] [--out DIR]

- Sources are synthetic (lavfi): testsrc2 (flat colours, text), mandelbrot (smooth gradients, zooming),
  and "noisy" (a Game of Life pattern over a colour gradient with temporal grain: real-footage-like noise).
  Each is 640x360, 30 fps, 4 s, encoded near-losslessly so it is the reference.
- Each setting is converted by the real plugin (GifFormat) at 480 px wide, 15 fps. SSIM is ffmpeg's ssim
  filter between the GIF and the source put through the same fps and lanczos scale (the best the GIF could be).
- --grid also tries every max_colors x bayer_scale combination, to choose the levels.
- --gifski compares settings that could close the gap to gifski (issue 13) on bench/gifski.py's clips:
  per-frame and per-scene palettes, stats and diff modes, dithers, palette sizes, gifsicle -O3 and its lossy
  LZW (needs gifski, see bench/gifski.py, and gifsicle).
- The pass comparison runs the one-pass graph (split, palettegen, paletteuse) and the plugin's two passes
  on 10 s of 1280x720 at 30 fps, at 480 px and at full size, under /usr/bin/time for wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.gif_measure import REFERENCE_SCALER, convert, ffmpeg, ssim
from transmute.plugins import gif as gif_plugin

SOURCES = {
    "testsrc2": "testsrc2=size=640x360:rate=30:duration=4",
    "mandelbrot": "mandelbrot=size=640x360:rate=30,trim=duration=4",
    "noisy": ("gradients=size=640x360:rate=30:speed=0.05:duration=4[g];"
              "life=size=640x360:rate=30:mold=10:ratio=0.3:life_color=#f0e0a0:death_color=#402010,"
              "trim=duration=4,format=yuv420p[l];[g][l]blend=all_mode=overlay,noise=alls=18:allf=t+u"),
}


def make_sources(folder: Path) -> dict[str, Path]:
    made = {}
    for name, graph in SOURCES.items():
        path = folder / f"{name}.mkv"
        ffmpeg("-f", "lavfi", "-i", graph, "-t", "4", "-c:v", "libx264", "-crf", "4", "-preset", "veryfast",
               "-pix_fmt", "yuv420p", str(path))
        made[name] = path
    return made


def quality_table(sources: dict[str, Path], folder: Path) -> None:
    print("\n## per quality level (480 px, 15 fps, bayer unless said)\n")
    print("| source | setting | size KiB | SSIM | time s |\n|---|---|---|---|---|")
    settings = [("low", {"quality": "low"}), ("medium", {"quality": "medium"}), ("high", {"quality": "high"}),
                ("high_quality", {"high_quality": True}),
                ("high + floyd_steinberg", {"quality": "high", "dither": "floyd_steinberg"}),
                ("high + sierra2_4a", {"quality": "high", "dither": "sierra2_4a"})]
    for name, source in sources.items():
        for label, values in settings:
            out = folder / f"{name}-{label.replace(' ', '')}.gif"
            took = convert(source, out, **values)
            print(f"| {name} | {label} | {out.stat().st_size / 1024:.0f} | {ssim(out, source):.4f} | {took:.2f} |")


def grid(sources: dict[str, Path], folder: Path) -> None:
    print("\n## grid (480 px, 15 fps, bayer, lanczos)\n")
    print("| source | max_colors | bayer_scale | size KiB | SSIM |\n|---|---|---|---|---|")
    original = dict(gif_plugin.QUALITY_SETTINGS)
    try:
        for name, source in sources.items():
            for colors in (64, 128, 256):
                for scale in (2, 3, 5):
                    gif_plugin.QUALITY_SETTINGS["medium"] = replace(original["medium"], max_colors=colors,
                                                                    bayer_scale=scale)
                    out = folder / f"grid-{name}-{colors}-{scale}.gif"
                    convert(source, out)
                    size = out.stat().st_size / 1024
                    print(f"| {name} | {colors} | {scale} | {size:.0f} | {ssim(out, source):.4f} |")
    finally:
        gif_plugin.QUALITY_SETTINGS.update(original)


def timed(command: list[str]) -> tuple[float, int]:
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, check=True)
    seconds, kilobytes = done.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kilobytes) // 1024


def passes(folder: Path) -> None:
    source = folder / "hd.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=10", "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "20", str(source))
    print("\n## one pass vs two passes (10 s of 1280x720 at 30 fps -> 15 fps GIF)\n")
    print("| size | method | wall s | peak RSS MiB | GIF KiB |\n|---|---|---|---|---|")
    base = ["ffmpeg", "-v", "error", "-nostdin", "-y"]
    for label, scale in (("480 px", "scale=480:-1:flags=lanczos"), ("full size", "null")):
        chain = f"fps=15,{scale}"
        one = folder / "one.gif"
        seconds, rss = timed([*base, "-i", str(source), "-filter_complex",
                              f"[0:v]{chain},split[a][b];[a]palettegen=max_colors=128[p];"
                              "[b][p]paletteuse=dither=bayer:bayer_scale=3:diff_mode=rectangle",
                              "-loop", "0", str(one)])
        print(f"| {label} | one pass | {seconds:.2f} | {rss} | {one.stat().st_size // 1024} |")
        palette, two = folder / "palette.png", folder / "two.gif"
        s1, r1 = timed([*base, "-i", str(source), "-vf", f"{chain},palettegen=max_colors=128", str(palette)])
        s2, r2 = timed([*base, "-i", str(source), "-i", str(palette), "-filter_complex",
                        f"[0:v]{chain}[x];[x][1:v]paletteuse=dither=bayer:bayer_scale=3:diff_mode=rectangle",
                        "-loop", "0", str(two)])
        print(f"| {label} | two passes ({s1:.2f} + {s2:.2f}) | {s1 + s2:.2f} | {max(r1, r2)} "
              f"| {two.stat().st_size // 1024} |")
        s3, r3 = timed([*base, "-i", str(source), "-i", str(palette), "-filter_complex",
                        f"[0:v]{chain},reverse[x];[x][1:v]paletteuse=dither=bayer:bayer_scale=3",
                        "-loop", "0", str(two)])
        print(f"| {label} | pass 2 with reverse | {s3:.2f} | {r3} | {two.stat().st_size // 1024} |")


HQ_GRAPH = {"colors": 256, "stats": "full", "use": "dither=bayer:bayer_scale=5:diff_mode=none"}
"""The palette graph of `high_quality` (gif.HIGH_QUALITY), which the variants below change one part of."""
GRAPH_VARIANTS = {
    "hq graph: per-frame palettes (stats_mode=single, new=1)":
        {"stats": "single", "use": "dither=bayer:bayer_scale=5:diff_mode=none:new=1"},
    "hq graph: stats_mode=diff": {"stats": "diff"},
    "hq graph: diff_mode=rectangle": {"use": "dither=bayer:bayer_scale=5:diff_mode=rectangle"},
    "hq graph: bayer_scale=3": {"use": "dither=bayer:bayer_scale=3:diff_mode=none"},
    "hq graph: bayer_scale=4": {"use": "dither=bayer:bayer_scale=4:diff_mode=none"},
    "hq graph: floyd_steinberg": {"use": "dither=floyd_steinberg:diff_mode=none"},
    "hq graph: dither=none": {"use": "dither=none:diff_mode=none"},
    "hq graph: max_colors=192": {"colors": 192},
    "hq graph: max_colors=160": {"colors": 160},
    "hq graph: max_colors=128": {"colors": 128},
}
LOSSY = (5, 10, 20, 40)
"""gifsicle --lossy levels tried on the high_quality GIF (20 is gifsicle's own example). With -O1: with lossy on,
-O3 gave the same bytes on 6 of the 8 clips (testsrc2: 25 % smaller but SSIM 0.878 against 0.890) in 5-7 times
the time (2.1 s against 0.3 s on the mandelbrot clip)."""


def _seconds(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, capture_output=True, check=True, stdin=subprocess.DEVNULL)
    return time.monotonic() - started


def palette_graph(source: Path, output: Path, width: int, colors: int, stats: str, use: str) -> float:
    """The high_quality chain (fps, the faithful scaler) and a palettegen/paletteuse pair, in one ffmpeg run."""
    return _seconds(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source), "-filter_complex",
                     f"fps=15,scale={width}:-1:flags={REFERENCE_SCALER},split[a][b];"
                     f"[a]palettegen=max_colors={colors}:stats_mode={stats}[p];[b][p]paletteuse={use}",
                     "-loop", "0", str(output)])


def scene_cuts(source: Path, width: int, threshold: float = 0.3) -> list[float]:
    """Times of the frames ffmpeg's scene score puts above `threshold` (select='gt(scene,0.3)')."""
    log = ffmpeg("-i", str(source), "-vf", f"fps=15,scale={width}:-1,select='gt(scene,{threshold})',showinfo",
                 "-f", "null", "-")
    return [float(t) for t in re.findall(r"pts_time:([0-9.]+)", log)]


def per_scene(source: Path, output: Path, width: int) -> float:
    """A palette per scene: scene_cuts, then one palettegen/paletteuse pair per span between cuts, concatenated
    (the GIF encoder writes a local palette where a frame's differs from the first)."""
    started = time.monotonic()
    cuts = scene_cuts(source, width)
    bounds = [0.0, *cuts, 1e9]
    parts, labels = [f"[0:v]fps=15,scale={width}:-1:flags={REFERENCE_SCALER},split={len(bounds) - 1}"
                     + "".join(f"[in{i}]" for i in range(len(bounds) - 1))], []
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        parts.append(f"[in{index}]trim=start={start}:end={end},setpts=PTS-STARTPTS,split[a{index}][b{index}];"
                     f"[a{index}]palettegen=stats_mode=full[p{index}];"
                     f"[b{index}][p{index}]paletteuse=dither=bayer:bayer_scale=5:diff_mode=none[s{index}]")
        labels.append(f"[s{index}]")
    graph = ";".join(parts) + f";{''.join(labels)}concat=n={len(labels)}:v=1:a=0"
    ffmpeg("-i", str(source), "-filter_complex", graph, "-loop", "0", str(output))
    return time.monotonic() - started


def gifski_settings(folder: Path) -> None:
    """Every setting tried against gifski on bench/gifski.py's clips (640x360, 3 s, to 480 px at 15 fps)."""
    from bench import gifski

    found = gifski.find_gifski()
    if found is None:
        raise SystemExit("gifski not found: run scripts/bench.sh once (it installs it), or set BENCH_GIFSKI")
    binary, version = found
    width = 480
    clips = gifski.make_clips(folder / "clips", "640x360", 3)
    print(f"\n## against {version} (480 px, 15 fps; time of gifski without the frame extraction)\n")
    print("| clip | setting | size KiB | SSIM | time s |\n|---|---|---|---|---|")

    def row(name: str, label: str, path: Path, seconds: float) -> None:
        print(f"| {name} | {label} | {path.stat().st_size / 1024:.0f} | {ssim(path, clips[name]):.4f} "
              f"| {seconds:.2f} |", flush=True)

    for name, source in clips.items():
        for item in gifski.compare_clip(binary, name, source, folder, width, repeats=1):
            print(f"| {name} | {item.setting} | {item.kib:.0f} | {item.ssim:.4f} | {item.seconds:.2f} |", flush=True)
        best = folder / f"{name}-high_quality.gif"
        for label, change in GRAPH_VARIANTS.items():
            out = folder / f"{name}-{len(label)}-{abs(hash(label)) % 10**6}.gif"
            row(name, label, out, palette_graph(source, out, width, **{**HQ_GRAPH, **change}))
        out = folder / f"{name}-scenes.gif"
        row(name, f"hq graph: a palette per scene ({len(scene_cuts(source, width))} cuts)", out,
            per_scene(source, out, width))
        for lossy in (0, *LOSSY):
            out = folder / f"{name}-lossy{lossy}.gif"
            options = ["-O1", f"--lossy={lossy}"] if lossy else ["-O3"]
            took = _seconds(["gifsicle", *options, str(best), "-o", str(out)])
            row(name, f"high_quality + gifsicle {' '.join(options)} (time: gifsicle alone)", out, took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true", help="also try every palette combination")
    parser.add_argument("--gifski", action="store_true", help="only the settings tried against gifski")
    parser.add_argument("--out", type=Path, help="keep the GIFs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gif-bench-") as temporary:
        folder = args.out or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        if args.gifski:
            gifski_settings(folder)
            return
        sources = make_sources(folder)
        quality_table(sources, folder)
        if args.grid:
            grid(sources, folder)
        passes(folder)


if __name__ == "__main__":
    main()
