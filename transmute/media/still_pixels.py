"""Holding still the pixels of a paletted clip that barely change, so the GIF leaves them transparent.

Sensor grain and compression noise flip a still pixel between neighbouring palette colours from frame to
frame. ffmpeg's GIF encoder leaves transparent only the pixels that are exactly the previous frame's, so every
flip is stored again. Here each pixel keeps the colour the GIF already shows until its new colour differs from
it by more than `tolerance` in some channel (R, G, B or alpha, 0-255), which is how gifski's denoiser saves
its bytes. The error stays within the tolerance: a slow drift is followed in steps of at most that much.

The frames are `rawvideo` in `pal8`, one after the other as they are paletted (transmute.media.remap): each is
width x height palette indices followed by the 256-entry palette (4 bytes an entry, BGRA). A frame whose
palette is not the one before (a new scene, see transmute.media.scenes) is kept whole, and the holding starts
again from it. numpy compares whole frames at once through a 256x256 table of "differs by more than the
tolerance" (about 1 ms a 480x270 frame).
"""

from __future__ import annotations

from transmute.media.quantize import PALETTE_ENTRIES

PALETTE_BYTES = PALETTE_ENTRIES * 4


class StillPixels:
    """Holds the still pixels of pal8 frames given one at a time, in order (see the module's docstring)."""

    def __init__(self, width: int, height: int, tolerance: int) -> None:
        self.pixels = width * height
        self.tolerance = tolerance
        self.palette = None
        self.differs = None
        """differs[new, shown]: whether palette entry `new` is more than the tolerance away from `shown`."""
        self.shown = None
        """The palette index each pixel shows so far."""

    @property
    def frame_bytes(self) -> int:
        return self.pixels + PALETTE_BYTES

    def hold(self, frame) -> None:
        """Rewrite `frame` (a writable buffer of frame_bytes: indices, then the palette) in place."""
        import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

        data = np.frombuffer(frame, dtype=np.uint8)
        indices, palette = data[:self.pixels], data[self.pixels:]
        if self.palette is None or not np.array_equal(palette, self.palette):
            self.palette = palette.copy()
            # Alpha counts too: a pixel turning transparent (or back) always shows.
            entries = self.palette.reshape(256, 4).astype(np.int16)
            self.differs = np.abs(entries[:, None, :] - entries[None, :, :]).max(axis=2) > self.tolerance
            self.shown = indices.copy()
            return
        np.copyto(self.shown, indices, where=self.differs[indices, self.shown])
        indices[:] = self.shown
