"""What a user would notice of an animated WebP or APNG, read from its bytes (chunks) and its decoded frames.

ffmpeg 5.1 cannot decode an animated WebP: Pillow (libwebp's animation decoder) does. APNG is decoded by ffmpeg.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageSequence


@dataclass
class Animation:
    """Canvas size, loop count (0 = for ever) and per-frame durations in milliseconds."""

    width: int
    height: int
    loop_count: int | None
    durations: list[float] = field(default_factory=list)
    has_alpha_flag: bool = False

    @property
    def frame_count(self) -> int:
        return len(self.durations)

    @property
    def duration(self) -> float:
        return sum(self.durations) / 1000


def _riff_chunks(data: bytes, pos: int, end: int):
    while pos + 8 <= end:
        fourcc, size = data[pos: pos + 4], struct.unpack("<I", data[pos + 4: pos + 8])[0]
        yield fourcc, data[pos + 8: pos + 8 + size]
        pos += 8 + size + (size & 1)


def read_webp(path: Path) -> Animation:
    """An animated WebP's VP8X canvas and flags, its ANIM loop count and its ANMF frames' durations."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", f"{path} is not a WebP"
    assert struct.unpack("<I", data[4:8])[0] + 8 == len(data), "the RIFF size is the file's"
    animation = Animation(width=0, height=0, loop_count=None)
    for fourcc, body in _riff_chunks(data, 12, len(data)):
        if fourcc == b"VP8X":
            animation.has_alpha_flag = bool(body[0] & 0x10)
            animation.width = int.from_bytes(body[4:7], "little") + 1
            animation.height = int.from_bytes(body[7:10], "little") + 1
        elif fourcc == b"ANIM":
            animation.loop_count = struct.unpack("<H", body[4:6])[0]
        elif fourcc == b"ANMF":
            animation.durations.append(int.from_bytes(body[12:15], "little"))
    return animation


def read_apng(path: Path) -> Animation:
    """An APNG's IHDR size, acTL play count and fcTL frame delays."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    animation = Animation(width=0, height=0, loop_count=None)
    pos = 8
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos: pos + 8])
        body = data[pos + 8: pos + 8 + size]
        if kind == b"IHDR":
            animation.width, animation.height = struct.unpack(">II", body[:8])
            animation.has_alpha_flag = body[9] in (4, 6)  # gray + alpha, RGBA
        elif kind == b"acTL":
            animation.loop_count = struct.unpack(">I", body[4:8])[0]
        elif kind == b"fcTL":
            numerator, denominator = struct.unpack(">HH", body[20:24])
            animation.durations.append(1000 * numerator / (denominator or 100))
        pos += 12 + size
    return animation


def webp_rgba_frames(path: Path, fps: int) -> list[bytes]:
    """Every frame of an animated WebP as the viewer shows it (rgba), one per 1/fps s (libwebp merges frames
    that hardly differ into one shown longer)."""
    frames: list[bytes] = []
    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            picture = frame.convert("RGBA").tobytes()
            end = round((frame.info["timestamp"] + frame.info["duration"]) * fps / 1000)
            frames.extend([picture] * max(1, end - len(frames)))
    return frames


def apng_rgba_frames(path: Path) -> list[bytes]:
    animation = read_apng(path)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgba",
                          "-vsync", "passthrough", "-"], check=True, capture_output=True).stdout
    size = animation.width * animation.height * 4
    return [raw[i: i + size] for i in range(0, len(raw), size)]


FAITHFUL = "lanczos+accurate_rnd+full_chroma_int+full_chroma_inp"


def ssim_of_frames(frames: list[bytes], width: int, height: int, source: Path, fps: int, folder: Path) -> float:
    """SSIM (RGB) of rgba frames against the source at `fps`, scaled to `width` as faithfully as ffmpeg can."""
    raw = folder / "frames.rgba"
    raw.write_bytes(b"".join(frames))
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{width}x{height}",
         "-r", str(fps), "-i", str(raw), "-i", str(source), "-filter_complex",
         f"[1:v]fps={fps},scale={width}:{height}:flags={FAITHFUL},format=rgb24[ref];[0:v]format=rgb24[out];"
         "[out][ref]ssim=shortest=1", "-f", "null", "-"], capture_output=True, text=True, check=True)
    raw.unlink()
    return float(re.findall(r"All:([0-9.]+)", done.stderr)[-1])


def alpha_values(frame: bytes) -> set[int]:
    return set(frame[3::4])
