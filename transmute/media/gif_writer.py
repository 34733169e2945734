"""Writing paletted frames as a GIF89a file, each frame redrawing only the pixels whose colour changes.

Each frame comes as `rawvideo` in `pal8`: width x height palette indices, then its 256-entry palette (`bgra`,
laid out as transmute.media.quantize makes it: entry 255 transparent). A pixel whose colour is the one the GIF
shows there already, whatever palette showed it, is left transparent, and the frame is cropped to the rectangle
of the pixels it redraws. The palette most frames have is the GIF's global one; a frame with another carries its
own (a local colour table), so a new palette may come at any frame (a scene's, or a stretch's of a textured
scene: see transmute.plugins.gif) without the frames being cut into GIFs of their own: ffmpeg's GIF encoder gives
a frame whose palette is not the one before no transparency, and its palette can only be its first frame's.

A source with transparency of its own (`own_transparency`: entry 255 means a transparent pixel) has each frame
written whole and the canvas cleared after it (disposal 2), so a pixel the source makes transparent shows
through, as ffmpeg's encoder does for such frames.

Frames are cropped and compressed in a thread of the writer's own while the caller maps the next ones, and
spooled to a temporary file: Pillow's LZW (`GifImagePlugin._write_frame_data`, which also writes the frame's
graphic control extension and image descriptor) lets go of the GIL when it writes to a file, so both cores work
(its public `getdata` holds it, and made a conversion 7-12 % slower). `close` writes the header, the global colour
table, the loop extension, the frames (with their local tables) and the trailer, as GIF89a lays them out
(https://www.w3.org/Graphics/GIF/spec-gif89a.txt).
"""

from __future__ import annotations

import math
import struct
import tempfile
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from types import TracebackType

from transmute.core.models import MediaInfo
from transmute.media.quantize import PALETTE_ENTRIES

TRANSPARENT_INDEX = PALETTE_ENTRIES - 1
"""The palette's transparent entry (as transmute.media.quantize lays it out): a pixel the GIF leaves as it shows it,
or one a source with transparency makes transparent."""
LEAVE, CLEAR = 1, 2
"""Disposal methods: leave the frame on the canvas (the next draws over it), or clear its rectangle after it."""
LOCAL_TABLE_FLAGS = 8 + 9
"""Where a spooled frame's image descriptor has its packed byte: after the graphic control extension (8 bytes)
and the separator, position and size (9)."""
FRAMES_AHEAD = 2
"""Frames given to the writer's thread and not written yet, at most: `add` waits past them."""


def shown_at(frame: int, fps: float) -> int:
    """The centisecond a GIF at `fps` shows frame number `frame` from: its time rounded to the nearest centisecond
    (halves up), as ffmpeg's GIF muxer does."""
    return math.floor(Fraction(frame * 100) / Fraction(fps) + Fraction(1, 2))


def loop_extension(loop: int) -> bytes:
    """The NETSCAPE2.0 application extension playing the GIF `loop` more times after the first (0: for ever);
    nothing for -1 (played once)."""
    if loop < 0:
        return b""
    return b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00"


class GifWriter:
    """Writes frames given one at a time (`add`) as the GIF `path` of `width` x `height` pixels at `fps`, whose
    NETSCAPE2.0 loop field is `loop` (-1: no loop extension); see the module's docstring. The frames are spooled
    to a temporary file of the same folder as they come, and the GIF written from it by `close` (a `with` block
    closes it), the palette most frames have as its global one; a writer left by an error leaves no file."""

    def __init__(self, path: Path, width: int, height: int, fps: float, loop: int,
                 own_transparency: bool = False) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.fps = fps
        self.loop = loop
        self.own_transparency = own_transparency
        # open as long as the writer is: close() and _discard() close it
        self.spool = tempfile.TemporaryFile(dir=self.path.parent, prefix=".gif-frames-")  # noqa: SIM115
        self.frames: list[tuple[int, int]] = []
        """Where each frame starts in the spool, and its palette's number."""
        self.palettes: dict[bytes, int] = {}
        self.canvas = None
        """The colour (a BGRA word) each pixel shows so far."""
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="gif-writer")
        self.pending: deque[Future[None]] = deque()

    def __enter__(self) -> GifWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._discard()

    @property
    def frame_count(self) -> int:
        """Frames written so far."""
        return len(self.frames)

    def written(self) -> MediaInfo:
        """What the GIF holds so far: its picture, frames, and length as a player plays it (the delays summed)."""
        count = self.frame_count
        return MediaInfo(duration=shown_at(count, self.fps) / 100, width=self.width, height=self.height, fps=self.fps,
                         frame_count=count, container="gif", video_codec="gif")

    def add(self, frame: bytes | bytearray) -> None:
        """Write the next frame, a pal8 frame (see the module's docstring) not changed afterwards: it is written
        in the writer's thread."""
        while len(self.pending) >= FRAMES_AHEAD:
            self.pending.popleft().result()  # raises the thread's error, if any
        self.pending.append(self.thread.submit(self._add, frame))

    def _add(self, frame: bytes | bytearray) -> None:
        import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

        pixels = self.width * self.height
        indices = np.frombuffer(frame, np.uint8, count=pixels).reshape(self.height, self.width)
        palette = bytes(frame[pixels:])
        left, top = 0, 0
        if not self.own_transparency:
            colours = np.frombuffer(palette, np.uint32)[indices]
            if self.canvas is None:
                self.canvas = colours
            else:
                redrawn = colours != self.canvas
                rows, columns = np.flatnonzero(redrawn.any(axis=1)), np.flatnonzero(redrawn.any(axis=0))
                if len(rows):
                    top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
                else:  # nothing changes: a pixel left as it is keeps the frame's time
                    top, bottom, left, right = 0, 1, 0, 1
                shown = redrawn[top:bottom, left:right]
                indices = np.where(shown, indices[top:bottom, left:right], np.uint8(TRANSPARENT_INDEX))
                np.copyto(self.canvas, colours, where=redrawn)
        self._spool_frame(indices, palette, (int(left), int(top)))

    def _spool_frame(self, indices, palette: bytes, offset: tuple[int, int]) -> None:
        """The frame's graphic control extension, image descriptor (no colour table yet) and LZW data."""
        from PIL import GifImagePlugin, Image

        height, width = indices.shape
        image = Image.frombuffer("P", (width, height), indices.tobytes(), "raw", "P", 0, 1)
        number = len(self.frames)
        delay = shown_at(number + 1, self.fps) - shown_at(number, self.fps)
        self.frames.append((self.spool.tell(), self.palettes.setdefault(palette, len(self.palettes))))
        GifImagePlugin._write_frame_data(self.spool, image, offset, {
            "transparency": TRANSPARENT_INDEX, "duration": delay * 10,
            "disposal": CLEAR if self.own_transparency else LEAVE})

    def close(self) -> None:
        """Write the GIF from the spooled frames (a GIF of no frame is no file)."""
        if self.spool.closed:
            return
        try:
            while self.pending:
                self.pending.popleft().result()
            self.thread.shutdown()
            if self.frames:
                self._write()
        except BaseException:
            self._discard()
            raise
        self.spool.close()

    def _write(self) -> None:
        counts = Counter(number for _, number in self.frames)
        tables = [_rgb(palette) for palette in self.palettes]
        shared = counts.most_common(1)[0][0]
        ends = [start for start, _ in self.frames[1:]] + [self.spool.tell()]
        try:
            with self.path.open("wb") as gif:
                gif.write(struct.pack("<6sHHBBB", b"GIF89a", self.width, self.height, 0xF7, TRANSPARENT_INDEX, 0)
                          + tables[shared] + loop_extension(self.loop))
                for (start, number), end in zip(self.frames, ends, strict=True):
                    self.spool.seek(start)
                    spooled = self.spool.read(end - start)
                    if number == shared:
                        gif.write(spooled)
                    else:  # the descriptor's packed byte says a 256-entry local table follows it
                        gif.write(spooled[:LOCAL_TABLE_FLAGS] + b"\x87" + tables[number]
                                  + spooled[LOCAL_TABLE_FLAGS + 1:])
                gif.write(b";")
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise

    def _discard(self) -> None:
        """Stop writing, and leave no file."""
        self.thread.shutdown(cancel_futures=True)
        self.spool.close()
        self.path.unlink(missing_ok=True)


def _rgb(palette: bytes) -> bytes:
    """A 256-entry `bgra` palette as a GIF colour table (RGB)."""
    import numpy as np

    return np.frombuffer(palette, np.uint8).reshape(-1, 4)[:, 2::-1].tobytes()
