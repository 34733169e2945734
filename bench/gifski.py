"""Figure 9: transmute's GIFs against gifski (the quality reference), on clips that resemble real footage.

gifski (https://gif.ski, pngquant per frame, temporal dithering) is fed the frames the GIF should show:
PNG frames ffmpeg extracts at the same fps and size with the faithful scaler (gif_quality.REFERENCE_SCALER),
at `--quality 90`. SSIM is bench/gif_quality.py's: each GIF against the source put through that same fps
and scale. gifski is not a Python package: scripts/bench.sh installs the npm package `gifski` (a prebuilt
binary) into .bench-tools/; without it the figure's row says it was skipped and the suite still passes.
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

from bench import gif_quality
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
            gif_quality.ffmpeg("-i", str(coded), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
        clips[name] = make_clip(path, graph, crf=4)
    return clips


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
                 f"fps={FPS},scale={width}:-1:flags={gif_quality.REFERENCE_SCALER}", str(folder / "%05d.png")])
    return sorted(folder.glob("*.png")), took


def frame_size(frame: Path) -> tuple[int, int]:
    shown = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0",
                            str(frame)], capture_output=True, text=True, check=True).stdout
    width, height = shown.strip().split(",")
    return int(width), int(height)


def run_gifski(gifski: str, frames: list[Path], output: Path, quality: int = GIFSKI_QUALITY) -> float:
    """gifski on `frames` at FPS; width and height given so its default ~800x600 cap never rescales them."""
    width, height = frame_size(frames[0])
    return _run([gifski, "--quiet", "--fps", str(FPS), "--quality", str(quality), "--width", str(width),
                 "--height", str(height), "--output", str(output), *map(str, frames)])


def plain_palette(source: Path, output: Path, width: int) -> float:
    """ffmpeg's plain palette pipeline: the two filters at their defaults (sierra2_4a dither)."""
    return _run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source), "-filter_complex",
                 f"fps={FPS},scale={width}:-1:flags=lanczos,split[a][b];[a]palettegen[p];[b][p]paletteuse",
                 "-loop", "0", str(output)])


@dataclass
class Measured:
    """One GIF of one clip: size, SSIM against the faithful reference, and the time to make it."""

    source: str
    setting: str
    kib: float
    ssim: float
    seconds: float
    note: str = ""


def measure(source: Path, output: Path, name: str, setting: str, width: int, seconds: float,
            note: str = "") -> Measured:
    return Measured(name, setting, output.stat().st_size / 1024,
                    gif_quality.ssim(output, source, width=width, fps=FPS), seconds, note)


def compare_clip(gifski: str, name: str, source: Path, work: Path, width: int, repeats: int) -> list[Measured]:
    """gifski, transmute high_quality and default, and ffmpeg's plain palette graph on one clip. gifski and
    high_quality (the pair the target compares) run alternately `repeats` times; the median time counts."""
    frames, extract_s = extract_frames(source, work / f"frames-{name}", width)
    outputs = {label: work / f"{name}-{label}.gif" for label in ("gifski", "high_quality", "default", "plain")}
    gifski_s, best_s = [], []
    for _ in range(repeats):
        gifski_s.append(run_gifski(gifski, frames, outputs["gifski"]))
        best_s.append(gif_quality.convert(source, outputs["high_quality"], high_quality=True, width=width, fps=FPS))
    default_s = gif_quality.convert(source, outputs["default"], width=width, fps=FPS)
    plain_s = plain_palette(source, outputs["plain"], width)
    for frame in frames:
        frame.unlink()
    return [
        measure(source, outputs["gifski"], name, f"gifski -Q {GIFSKI_QUALITY}", width, statistics.median(gifski_s),
                note=f"+{extract_s:.2f} s extracting {len(frames)} PNG frames"),
        measure(source, outputs["high_quality"], name, "transmute high_quality", width, statistics.median(best_s)),
        measure(source, outputs["default"], name, "transmute default (medium)", width, default_s),
        measure(source, outputs["plain"], name, "ffmpeg palettegen,paletteuse", width, plain_s),
    ]


def meets_target(best: Measured, reference: Measured) -> bool:
    """Issue 13's target: SSIM at or above gifski's, a file no larger, in at most half its time."""
    return best.ssim >= reference.ssim and best.kib <= reference.kib and best.seconds <= reference.seconds / 2
