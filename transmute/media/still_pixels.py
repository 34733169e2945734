"""Holding still the pixels of a paletted clip that barely change, so the GIF leaves them transparent.

Sensor grain and compression noise flip a still pixel between neighbouring palette colours from frame to
frame. ffmpeg's GIF encoder leaves transparent only the pixels that are exactly the previous frame's, so every
flip is stored again. Here each pixel keeps the colour the GIF already shows until its new colour differs from
it by more than `tolerance` in some channel (R, G, B or alpha, 0-255), which is how gifski's denoiser saves
its bytes. The error stays within the tolerance: a slow drift is followed in steps of at most that much.

The frames are ffmpeg's `rawvideo` in `pal8`: each frame is width x height palette indices followed by the
256-entry palette (4 bytes an entry, BGRA). A frame whose palette is not the one before (a new scene, see
transmute.media.scenes) is kept whole, and the holding starts again from it. numpy compares whole frames at once
through a 256x256 table of "differs by more than the tolerance" (about 1 ms a 480x270 frame).
"""

from __future__ import annotations

import threading
from pathlib import Path

from transmute.core.errors import ConversionCancelled

PALETTE_BYTES = 256 * 4


def hold_still_pixels(frames: Path, width: int, height: int, tolerance: int,
                      cancel: threading.Event | None = None) -> None:
    """Rewrite the `pal8` rawvideo file `frames` in place (see the module's docstring). ConversionCancelled
    when `cancel` is set."""
    import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert (46 ms and 14 MB)

    pixels = width * height
    size = Path(frames).stat().st_size
    if size < 2 * (pixels + PALETTE_BYTES):
        return  # one frame (or none): nothing to hold
    clip = np.memmap(frames, dtype=np.uint8, mode="r+", shape=(size // (pixels + PALETTE_BYTES),
                                                               pixels + PALETTE_BYTES))
    try:
        palette = None
        for index in range(clip.shape[0]):
            if cancel is not None and cancel.is_set():
                raise ConversionCancelled("The conversion was cancelled.")
            frame = clip[index, :pixels]
            if palette is None or not np.array_equal(clip[index, pixels:], palette):
                palette = clip[index, pixels:].copy()
                # Alpha counts too: a pixel turning transparent (or back) always shows.
                entries = palette.reshape(256, 4).astype(np.int16)
                differs = np.abs(entries[:, None, :] - entries[None, :, :]).max(axis=2) > tolerance
                shown = frame.copy()
                continue
            np.copyto(shown, frame, where=differs[frame, shown])
            frame[:] = shown
        clip.flush()
    finally:
        del clip
