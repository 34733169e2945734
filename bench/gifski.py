"""Figure 9: transmute's GIFs against gifski (the quality reference), on clips that resemble real footage.

gifski (https://gif.ski, pngquant per frame, temporal dithering) is fed the frames the GIF should show, as
issue 13 measures it: PNG frames ffmpeg extracts at the same fps and a lanczos scale to the same width, at
`--quality 90`. SSIM is the issue's (gif_measure.ssim_yuv444: against those frames, in yuv444p); the faithful
rgb24 SSIM of bench/gif_quality.py is kept beside it. Besides the generated clips, every video in the folder
BENCH_GIF_CLIPS (real footage: not in the repository) gets a row. gifski is not a Python package:
scripts/bench.sh installs the npm package `gifski` (a prebuilt binary) into .bench-tools/; without it the
figure's row says it was skipped and the suite still passes.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench import gif_measure
from bench.harness import ROOT, make_clip

GIFSKI_VERSION = "1.7.1"
GIFSKI_PREFIX = ROOT / ".bench-tools"
"""Where scripts/bench.sh runs `npm install --prefix` (git-ignored)."""
GIFSKI_QUALITY = 90
FPS = 15

FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
         "/Library/Fonts/Courier New.ttf", "/System/Library/Fonts/Menlo.ttc")
CODE = ["def convert(self, job) -> None", "    the_plan = plan(job)", "    settings = settings_for(job.params)",
        "    if uses_one_pass(the_plan, job.params)", "        split = source_video(job).split()",
        "# two passes otherwise", "    palette = work_dir / palette.png", "    run_ffmpeg(gif, limits=job.limits)",
        "    return None", "", "class GifFormat(OutputFormat)", "    name = gif"]


def find_gifski() -> tuple[str, str] | None:
    """(path, version) of a working gifski: $BENCH_GIFSKI, else on PATH, else the npm package in .bench-tools."""
    folder = {"Linux": "debian", "Darwin": "macos", "Windows": "windows"}.get(platform.system(), "debian")
    binary = "gifski.exe" if folder == "windows" else "gifski"
    candidates = [os.environ.get("BENCH_GIFSKI"), shutil.which("gifski"),
                  str(GIFSKI_PREFIX / "node_modules" / "gifski" / "bin" / folder / binary)]
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=30)
        except OSError:  # absent, or built for another architecture (the npm package ships x86-64 only)
            continue
        if done.returncode == 0:
            return candidate, done.stdout.strip()
    return None


def _font() -> str | None:
    found = subprocess.run(["fc-match", "-f", "%{file}", "monospace"], capture_output=True, text=True) \
        if shutil.which("fc-match") else None
    for path in ([found.stdout] if found and found.returncode == 0 else []) + list(FONTS):
        if path and Path(path).is_file() and path.endswith((".ttf", ".otf")):
            return path
    return None


def _screen(width: int, height: int, seconds: float) -> str:
    """A screen recording: lines of code scrolling over a flat background, a title bar, a window sliding
    over it and a cursor moving (text with drawtext when a font exists, else grey bars)."""
    unit = height / 360  # the layout is drawn for 640x360 and scaled with the clip
    font = _font()
    lines = []
    for index, text in enumerate(CODE):
        y = f"{(60 + 22 * index) * unit:.0f}+{200 * unit:.0f}-{40 * unit:.0f}*t"
        colour = "#0b6e0b" if text.startswith("#") else "#202020"
        if font and text:
            lines.append(f"drawtext=fontfile={font}:text='{text}':x={24 * unit:.0f}:y={y}:fontsize={15 * unit:.0f}"
                         f":fontcolor={colour}")
        elif text:
            lines.append(f"drawbox=x={24 * unit:.0f}:y={y}:w={len(text) * 9 * unit:.0f}:h={12 * unit:.0f}"
                         f":c={colour}:t=fill")
    bar = max(2, round(28 * unit))
    window_w, window_h, cursor_w, cursor_h = (max(2, round(v * unit)) for v in (220, 130, 8, 14))
    return (f"color=c=#f3f3f3:size={width}x{height}:rate=30:duration={seconds}," + ",".join(lines)
            + f",drawbox=x=0:y=0:w=iw:h={bar}:c=#2b579a:t=fill[bg];"
            f"color=c=white:size={window_w}x{window_h}:rate=30,drawbox=x=0:y=0:w=iw:h=ih:c=#8a8a8a:t=2,"
            f"drawbox=x=0:y=0:w=iw:h={max(2, round(20 * unit))}:c=#dddddd:t=fill[win];"
            f"color=c=black:size={cursor_w}x{cursor_h}:rate=30[cur];"
            f"[bg][win]overlay=x={380 * unit:.0f}-{50 * unit:.0f}*t:y={60 * unit:.0f}+{15 * unit:.0f}*t:shortest=1[a];"
            f"[a][cur]overlay=x={300 * unit:.0f}+{120 * unit:.0f}*sin(2*t):y={200 * unit:.0f}+{60 * unit:.0f}*cos(3*t)"
            ":shortest=1")


def _cartoon(width: int, height: int, seconds: float) -> str:
    """Animation-like: two outlined flat-colour figures (one with an eye) crossing a flat sky and ground under a
    sun, slightly blurred like anti-aliased drawing."""
    unit = height / 360
    a_w, a_h, b_w, b_h, line, eye, pupil = (max(2, round(v * unit)) for v in (120, 90, 70, 110, 4, 24, 10))
    return (f"color=c=#8fd3f4:size={width}x{height}:rate=30:duration={seconds},"
            "drawbox=x=0:y=ih*0.7:w=iw:h=ih*0.3:c=#6ab04c:t=fill,"
            "drawbox=x=iw*0.62:y=ih*0.1:w=ih*0.18:h=ih*0.18:c=#f9ca24:t=fill[bg];"
            f"color=c=#eb4d4b:size={a_w}x{a_h}:rate=30,drawbox=x=0:y=0:w=iw:h=ih:c=#30336b:t={line},"
            f"drawbox=x={eye}:y={eye}:w={eye}:h={eye}:c=white:t=fill,"
            f"drawbox=x={eye + (eye - pupil) // 2}:y={eye + (eye - pupil) // 2}:w={pupil}:h={pupil}:c=black:t=fill[a];"
            f"color=c=#e056fd:size={b_w}x{b_h}:rate=30,drawbox=x=0:y=0:w=iw:h=ih:c=#30336b:t={line}[b];"
            f"[bg][a]overlay=x={-a_w}+{260 * unit:.0f}*t:y={150 * unit:.0f}+{30 * unit:.0f}*sin(6*t):shortest=1[c];"
            f"[c][b]overlay=x={500 * unit:.0f}-{90 * unit:.0f}*t:y={140 * unit:.0f}+{40 * unit:.0f}*abs(sin(4*t))"
            f":shortest=1,gblur=sigma={0.8 * unit:.2f}")


def clip_graphs(size: str, seconds: float) -> dict[str, str]:
    """lavfi graphs of each clip kind at `size` (WxH) for `seconds` (the phone clip is twice as large and
    turned to portrait by its rotation metadata, see make_clips). Random sources are seeded: the same clips
    every run."""
    width, height = (int(v) for v in size.split("x"))
    cells = f"{max(8, width // 4)}x{max(8, height // 4)}"
    return {
        # synthetic: flat colours, text, a moving gradient
        "testsrc2": f"testsrc2=size={size}:rate=30:duration={seconds}",
        # smooth gradients, zooming
        "mandelbrot": f"mandelbrot=size={size}:rate=30,trim=duration={seconds}",
        # organic texture: Game of Life cells with mould, soft-edged (scaled up bicubic)
        "life": (f"life=size={cells}:rate=30:seed=7:mold=25:ratio=0.35:life_color=#f4e3b0:death_color=#1e2a44:"
                 f"mold_color=#6a8f5a,scale={size}:flags=bicubic,setsar=1,trim=duration={seconds}"),
        # a scrolling rule-110 automaton tinted by a moving colour gradient (fine detail, many colours)
        "cellauto": (f"cellauto=size={cells}:rate=30:seed=7:rule=110:random_fill_ratio=0.5:scroll=1,"
                     f"scale={size}:flags=bilinear,setsar=1,format=rgb24[c];"
                     f"gradients=size={size}:rate=30:seed=7:speed=0.05:c0=#f6d365:c1=#fda085:c2=#84fab0:"
                     f"duration={seconds},format=rgb24[g];[c][g]blend=all_mode=multiply,trim=duration={seconds}"),
        # camera-like: a slowly moving 4-colour gradient, a bright object crossing it, lens softness and
        # sensor grain (temporal noise)
        "grain": (f"gradients=size={size}:rate=30:seed=7:speed=0.02:c0=#1d3557:c1=#a8dadc:c2=#e9c46a:c3=#264653:n=4:"
                  f"duration={seconds}[bg];color=c=#f1faee:size={width * 3 // 16}x{height * 2 // 9}:rate=30[box];"
                  f"[bg][box]overlay=x={width // 10}+{width // 7}*t:y={height * 7 // 18}+{height // 18}*sin(3*t)"
                  ":shortest=1,gblur=sigma=1.5,noise=alls=9:allf=t+u:all_seed=7"),
        "screen": _screen(width, height, seconds),
        # an edited clip: three shots with hard cuts (a palette per scene could help here)
        "cuts": (f"mandelbrot=size={size}:rate=30,trim=duration={seconds / 3:.3f},setpts=PTS-STARTPTS[a];"
                 f"life=size={cells}:rate=30:seed=7:mold=25:ratio=0.35:life_color=#f4e3b0:death_color=#1e2a44:"
                 f"mold_color=#6a8f5a,scale={size}:flags=bicubic,setsar=1,trim=duration={seconds / 3:.3f},"
                 "setpts=PTS-STARTPTS[b];"
                 f"gradients=size={size}:rate=30:seed=7:speed=0.02:c0=#3a5f8a:c1=#d9a36b:c2=#2f4d2a:n=3:"
                 f"duration={seconds / 3:.3f},noise=alls=9:allf=t+u:all_seed=7[c];[a][b][c]concat=n=3"),
        # animation: flat-shaded shapes with dark outlines moving over a flat sky and ground, soft edges
        "cartoon": _cartoon(width, height, seconds),
        # a camera panning over a detailed, textured still (gravel or foliage-like), with sensor grain
        "pan": (f"gradients=size={width * 2}x{height * 2}:rate=30:seed=3:n=6:c0=#2d6a4f:c1=#e9c46a:c2=#9d4edd:"
                f"c3=#f4a261:c4=#264653:c5=#a8dadc,trim=end_frame=1,format=rgb24[g];"
                f"life=size={max(8, width // 2)}x{max(8, height // 2)}:rate=30:seed=5:ratio=0.45:mold=40:"
                "life_color=#ffffff:death_color=#404040:mold_color=#909090,trim=start_frame=12:end_frame=13,"
                f"setpts=PTS-STARTPTS,scale={width * 2}x{height * 2}:flags=bicubic,gblur=sigma=1.2,format=rgb24[t];"
                f"[g][t]blend=all_mode=multiply,loop=loop={round(seconds * 30) - 1}:size=1,setpts=N/30/TB,"
                f"crop=w={width}:h={height}:x='t*{width * 17 // 64 / seconds * 3:.1f}':"
                f"y='{height // 6}+t*{height * 5 // 36 / seconds * 3:.1f}',noise=alls=7:allf=t+u:all_seed=7"),
        # a phone video: a landscape-coded frame, twice the size, shown portrait through rotation metadata
        "phone": (f"gradients=size={width * 2}x{height * 2}:rate=30:seed=7:speed=0.02:c0=#3a5f8a:c1=#d9a36b:"
                  f"c2=#2f4d2a:n=3:duration={seconds}[bg];"
                  f"color=c=#c0392b:size={width * 11 // 32}x{width * 11 // 32}:rate=30[box];"
                  f"[bg][box]overlay=x={width * 5 // 16}+{width * 15 // 64}*t:y={height * 25 // 36}:shortest=1,"
                  "gblur=sigma=3,noise=alls=10:allf=t+u:all_seed=7"),
    }


def make_clips(folder: Path, size: str, seconds: float) -> dict[str, Path]:
    """Each clip kind encoded near-losslessly (x264 crf 4: it is the SSIM reference)."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = {}
    for name, graph in clip_graphs(size, seconds).items():
        path = folder / f"g-{name}.mp4"
        if name == "phone" and not path.exists():
            coded = make_clip(folder / "g-phone-landscape.mp4", graph, crf=4)
            # -metadata rotate on a stream copy writes the display matrix (ffmpeg 5 and 6 both read it)
            gif_measure.ffmpeg("-i", str(coded), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
        clips[name] = make_clip(path, graph, crf=4)
    return clips


VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v")


def real_clips(folder: str | None = None) -> dict[str, Path]:
    """The videos in BENCH_GIF_CLIPS (or `folder`), by name: real footage a user brings, measured whole (keep them
    a few seconds long). Empty when the variable is not set."""
    folder = folder if folder is not None else os.environ.get("BENCH_GIF_CLIPS")
    if not folder:
        return {}
    return {f"real {path.stem}": path for path in sorted(Path(folder).iterdir())
            if path.suffix.lower() in VIDEO_SUFFIXES}


def _run(command: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr[-800:]}")
    return time.monotonic() - started


def extract_frames(source: Path, folder: Path, width: int) -> tuple[list[Path], float]:
    """The PNG frames gifski is given: the source at FPS and `width`, scaled like the SSIM reference."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    took = _run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source), "-vf",
                 f"fps={FPS},scale={width}:-2:flags={gif_measure.ISSUE_SCALER}", str(folder / "%05d.png")])
    return sorted(folder.glob("*.png")), took


def run_gifski(gifski: str, frames: list[Path], output: Path, quality: int = GIFSKI_QUALITY) -> float:
    """gifski on `frames` at FPS; width and height given so its default ~800x600 cap never rescales them."""
    width, height = gif_measure.picture_size(frames[0])
    return _run([gifski, "--quiet", "--fps", str(FPS), "--quality", str(quality), "--width", str(width),
                 "--height", str(height), "--output", str(output), *map(str, frames)])


def plain_palette(source: Path, output: Path, width: int) -> float:
    """ffmpeg's plain palette pipeline: the two filters at their defaults (sierra2_4a dither)."""
    return _run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source), "-filter_complex",
                 f"fps={FPS},scale={width}:-2:flags=lanczos,split[a][b];[a]palettegen[p];[b][p]paletteuse",
                 "-loop", "0", str(output)])


@dataclass
class Measured:
    """One GIF of one clip: size, SSIM (issue 13's, and the faithful rgb24 one), and the time to make it."""

    source: str
    setting: str
    kib: float
    ssim: float
    """Issue 13's SSIM (gif_measure.ssim_yuv444): the one the target compares."""
    seconds: float
    note: str = ""
    extract_seconds: float = 0.0
    """gifski only: the time ffmpeg took to extract its PNG frames (what a gifski user pays to start from a video)."""
    ssim_rgb: float = 0.0
    """SSIM against the faithful rgb24 picture (gif_measure.ssim), as in docs/gif-quality.md's other tables."""


def measure(source: Path, output: Path, name: str, setting: str, seconds: float,
            note: str = "", extract_seconds: float = 0.0) -> Measured:
    return Measured(name, setting, output.stat().st_size / 1024, gif_measure.ssim_yuv444(output, source, fps=FPS),
                    seconds, note, extract_seconds, ssim_rgb=gif_measure.ssim(output, source, fps=FPS))


def compare_clip(gifski: str, name: str, source: Path, work: Path, width: int, repeats: int) -> list[Measured]:
    """gifski, transmute high_quality and default, and ffmpeg's plain palette graph on one clip. gifski and
    high_quality (the pair the target compares) run alternately `repeats` times; the median time counts."""
    frames, extract_s = extract_frames(source, work / f"frames-{name}", width)
    outputs = {label: work / f"{name}-{label}.gif" for label in ("gifski", "high_quality", "default", "plain")}
    gifski_s, best_s = [], []
    for _ in range(repeats):
        gifski_s.append(run_gifski(gifski, frames, outputs["gifski"]))
        best_s.append(gif_measure.convert(source, outputs["high_quality"], high_quality=True, width=width, fps=FPS))
    default_s = gif_measure.convert(source, outputs["default"], width=width, fps=FPS)
    plain_s = plain_palette(source, outputs["plain"], width)
    for frame in frames:
        frame.unlink()
    return [
        measure(source, outputs["gifski"], name, f"gifski -Q {GIFSKI_QUALITY}", statistics.median(gifski_s),
                note=f"+{extract_s:.2f} s extracting {len(frames)} PNG frames", extract_seconds=extract_s),
        measure(source, outputs["high_quality"], name, "transmute high_quality", statistics.median(best_s)),
        measure(source, outputs["default"], name, "transmute default (medium)", default_s),
        measure(source, outputs["plain"], name, "ffmpeg palettegen,paletteuse", plain_s),
    ]


def missed(best: Measured, reference: Measured, with_extraction: bool = False) -> list[str]:
    """The parts of issue 13's target `best` misses against gifski's `reference`: SSIM at or above gifski's, a
    file no larger, in at most half its time (gifski alone, or with its frame extraction counted)."""
    gifski_seconds = reference.seconds + (reference.extract_seconds if with_extraction else 0.0)
    return [part for part, ok in (("SSIM", best.ssim >= reference.ssim), ("size", best.kib <= reference.kib),
                                  ("time", best.seconds <= gifski_seconds / 2)) if not ok]


def meets_target(best: Measured, reference: Measured, with_extraction: bool = False) -> bool:
    """Issue 13's target (see `missed`)."""
    return not missed(best, reference, with_extraction)


def verdict(best: Measured, reference: Measured, with_extraction: bool = False) -> str:
    """`met`, or `missed (SSIM, size, time)` naming the parts missed."""
    parts = missed(best, reference, with_extraction)
    return f"missed ({', '.join(parts)})" if parts else "met"
