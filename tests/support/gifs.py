"""Reading GIFs the way a user would notice them: size, loop count, frame delays, decoded frames."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


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
    global_table: int = 0
    """Entries of the global colour table (0 without one)."""
    local_tables: list[int] = field(default_factory=list)
    """Entries of each local colour table, for the frames that have one."""
    local_table_frames: list[int] = field(default_factory=list)
    """The index of each frame that has a local colour table."""
    rectangles: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Each frame's rectangle (x, y, width, height): the pixels it draws."""
    palettes: list[bytes] = field(default_factory=list)
    """Each frame's colour table (its local one, else the global one), as RGB bytes."""

    @property
    def frame_count(self) -> int:
        """How many frames the GIF has."""
        return len(self.delays)

    @property
    def duration(self) -> float:
        """How long one play of the GIF lasts, in seconds."""
        return sum(self.delays) / 100


def read_gif(path: Path) -> Gif:
    """The header, loop count and frame delays of the GIF at `path` (fails the test if it is not a GIF)."""
    data = path.read_bytes()
    assert data[:6] in (b"GIF87a", b"GIF89a"), f"{path} is not a GIF"
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    flags, pos = data[10], 13
    global_palette = b""
    if flags & 0x80:
        global_palette = data[pos:pos + 3 * (2 << (flags & 7))]
        pos += 3 * (2 << (flags & 7))
    gif = Gif(version=data[:6], width=width, height=height, loop_count=None,
              global_table=2 << (flags & 7) if flags & 0x80 else 0)
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
            gif.rectangles.append(tuple(int.from_bytes(data[at:at + 2], "little") for at in range(pos + 1, pos + 9, 2)))
            local = data[pos + 9]
            pos += 10
            palette = global_palette
            if local & 0x80:
                gif.local_tables.append(2 << (local & 7))
                gif.local_table_frames.append(len(gif.delays))
                palette = data[pos:pos + 3 * (2 << (local & 7))]
                pos += 3 * (2 << (local & 7))
            gif.palettes.append(palette)
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
    """The mean byte value of a raw frame."""
    return sum(frame) / len(frame)


def is_gif(data: bytes) -> bool:
    """Whether `data` looks like a whole GIF file (its signature and its trailer)."""
    return data[:6] in (b"GIF87a", b"GIF89a") and data.endswith(b";")


def ssim_to_source(gif, source, width: int) -> float:
    """SSIM of a GIF against the source scaled as faithfully as ffmpeg can (chroma interpolated)."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(gif), "-i", str(source), "-filter_complex",
         f"[1:v]fps=15,scale={width}:-1:flags=lanczos+accurate_rnd+full_chroma_int+full_chroma_inp,format=rgb24[ref];"
         "[0:v]format=rgb24[gif];[gif][ref]ssim", "-f", "null", "-"], capture_output=True, text=True, check=True)
    return float(re.findall(r"All:([0-9.]+)", done.stderr)[-1])
