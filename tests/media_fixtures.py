"""Test clips made with ffmpeg's lavfi sources (nothing binary is committed) and helpers to read GIFs.

Session-scoped and small (320x240 or less, 3 s or less) so the suite stays fast on two cores.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from transmute.core.formats import ConversionJob
from transmute.core.params import parse_params
from transmute.core.plugins import get_format
from transmute.media.probe import probe
from transmute.settings import LimitsConfig


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", *args], check=True)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Named inputs: `video` (320x240, 3 s, 30 fps, with sound), `ramp` (64x48, 2 s, 10 fps, black
    brightening to white), `small` (160x120, 1 s), `audio` (sound only), `text` (not media), `empty`."""
    folder = tmp_path_factory.mktemp("clips")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    made = {name: folder / filename for name, filename in {
        "video": "testsrc2.mp4", "ramp": "ramp.mp4", "small": "small.mp4",
        "audio": "sine.wav", "text": "notes.txt", "empty": "empty.mp4"}.items()}
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3", "-f", "lavfi",
           "-i", "sine=frequency=440:duration=3", *x264, "-c:a", "aac", "-shortest", str(made["video"]))
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x48:r=10:d=2,format=gray,geq=lum='min(250,T*120)'",
           *x264, "-qp", "0", str(made["ramp"]))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15:duration=1", *x264, str(made["small"]))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(made["audio"]))
    made["text"].write_text("This is a shopping list, not a video.\n")
    made["empty"].write_bytes(b"")
    return made


def make_truncated(folder: Path) -> Path:
    """`truncated.mp4` in `folder`: a 320x240 clip whose index (up front) says 4 s but whose bytes stop at 40 %
    (about 1.5 s), as after an interrupted copy; `whole.mp4` beside it is the clip before the cut."""
    whole, truncated = folder / "whole.mp4", folder / "truncated.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=4", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(whole))
    data = whole.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.4)])
    return truncated


# ------------------------------------------------------------------------------------------ GIF reading


@dataclass
class Gif:
    """What a user would notice of a GIF file, read straight from its bytes."""

    version: bytes
    width: int
    height: int
    loop_count: int | None
    """The NETSCAPE2.0 loop count (0 = forever), None without the extension."""
    delays: list[int] = field(default_factory=list)
    """Per-frame delay, in hundredths of a second."""

    @property
    def frame_count(self) -> int:
        return len(self.delays)

    @property
    def duration(self) -> float:
        return sum(self.delays) / 100


def read_gif(path: Path) -> Gif:
    data = path.read_bytes()
    assert data[:6] in (b"GIF87a", b"GIF89a"), f"{path} is not a GIF"
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    flags, pos = data[10], 13
    if flags & 0x80:
        pos += 3 * (2 << (flags & 7))
    gif = Gif(version=data[:6], width=width, height=height, loop_count=None)
    delay = 0
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension
            label, pos = data[pos + 1], pos + 2
            body = b""
            while data[pos]:
                body += data[pos + 1: pos + 1 + data[pos]]
                pos += 1 + data[pos]
            pos += 1
            if label == 0xF9:
                delay = int.from_bytes(body[1:3], "little")
            elif label == 0xFF and body.startswith(b"NETSCAPE2.0"):
                gif.loop_count = int.from_bytes(body[12:14], "little")
        elif block == 0x2C:  # image descriptor
            local = data[pos + 9]
            pos += 10
            if local & 0x80:
                pos += 3 * (2 << (local & 7))
            pos += 1  # LZW minimum code size
            while data[pos]:
                pos += 1 + data[pos]
            pos += 1
            gif.delays.append(delay)
            delay = 0
        else:
            raise AssertionError(f"unexpected block {block:#x} at {pos} in {path}")
    return gif


def rgb_frames(path: Path, pix_fmt: str = "rgb24") -> list[bytes]:
    """Every frame of a GIF decoded to raw rgb24, or rgba with `pix_fmt="rgba"` (full frames, as a viewer
    shows them)."""
    gif = read_gif(path)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", pix_fmt,
                          "-vsync", "passthrough", "-"], check=True, capture_output=True).stdout
    size = gif.width * gif.height * (4 if pix_fmt == "rgba" else 3)
    return [raw[i: i + size] for i in range(0, len(raw), size)]


def brightness(frame: bytes) -> float:
    return sum(frame) / len(frame)


# ------------------------------------------------------------------------------------------ converting


@dataclass
class Converted:
    path: Path
    progress: list[float]

    @property
    def gif(self) -> Gif:
        return read_gif(self.path)


def convert(source: Path, output: Path, *, cancel: threading.Event | None = None, timeout: float | None = None,
            on_progress=None, **values) -> Converted:
    """Convert `source` the way the CLI and the worker do: parse, probe, pick the plugin, convert."""
    params = parse_params(values)
    reports: list[float] = []

    def progress(percent: float) -> None:
        reports.append(percent)
        if on_progress is not None:
            on_progress(percent)

    work_dir = output.parent / (output.stem + ".work")
    work_dir.mkdir(exist_ok=True)
    limits = LimitsConfig().for_conversion()
    job = ConversionJob(input_path=source, output_path=output, params=params, media=probe(source, limits=limits),
                        limits=limits, progress=progress, timeout=timeout, work_dir=work_dir)
    if cancel is not None:
        job.cancel = cancel
    get_format(params.format).convert(job)
    return Converted(output, reports)
