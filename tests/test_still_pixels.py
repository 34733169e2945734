"""Holding still pixels in a paletted clip (transmute.media.still_pixels): a pixel keeps what the GIF shows
until its new colour is more than the tolerance away, so grain on a still background is stored once."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from transmute.core.errors import ConversionCancelled
from transmute.media.still_pixels import hold_still_pixels

GREY, NEAR_GREY, RED = 0, 1, 2


def palette_of(entries: dict[int, tuple[int, int, int, int]]) -> bytes:
    palette = np.zeros((256, 4), dtype=np.uint8)
    for index, entry in entries.items():
        palette[index] = entry
    return palette.tobytes()


GREYS = palette_of({GREY: (100, 100, 100, 255), NEAR_GREY: (100, 100, 103, 255), RED: (0, 0, 200, 255)})


def write_frames(path, frames: list[list[int]], palettes: list[bytes] | None = None) -> None:
    """A pal8 rawvideo file of 1-row frames, by default all with GREYS: index 0 grey, 1 a grey 3 levels redder,
    2 red (BGRA entries)."""
    palettes = palettes or [GREYS] * len(frames)
    path.write_bytes(b"".join(bytes(frame) + palette for frame, palette in zip(frames, palettes, strict=True)))


def read_frames(path, width: int) -> list[list[int]]:
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(-1, width + 1024)
    return [list(frame[:width]) for frame in data]


def test_a_pixel_flickering_to_a_near_colour_keeps_the_first_and_a_real_change_shows(tmp_path):
    frames = tmp_path / "frames.pal8"
    write_frames(frames, [[GREY, GREY, GREY], [NEAR_GREY, RED, GREY], [GREY, NEAR_GREY, NEAR_GREY]])
    hold_still_pixels(frames, 3, 1, tolerance=5)
    assert read_frames(frames, 3) == [[GREY, GREY, GREY], [GREY, RED, GREY], [GREY, NEAR_GREY, GREY]]


def test_a_tolerance_under_the_difference_changes_nothing(tmp_path):
    frames = tmp_path / "frames.pal8"
    written = [[GREY, GREY], [NEAR_GREY, RED], [GREY, NEAR_GREY]]
    write_frames(frames, written)
    hold_still_pixels(frames, 2, 1, tolerance=2)
    assert read_frames(frames, 2) == written


def test_a_cancel_stops_holding(tmp_path):
    frames = tmp_path / "frames.pal8"
    write_frames(frames, [[GREY], [NEAR_GREY], [GREY]])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ConversionCancelled):
        hold_still_pixels(frames, 1, 1, tolerance=5, cancel=cancel)


def test_a_frame_with_a_palette_of_its_own_starts_the_holding_again(tmp_path):
    # a new scene: its palette has grey at index 2 and red at index 0, so the same indices mean other colours
    scene = palette_of({RED: (100, 100, 100, 255), NEAR_GREY: (100, 100, 103, 255), GREY: (0, 0, 200, 255)})
    frames = tmp_path / "frames.pal8"
    write_frames(frames, [[GREY, GREY], [GREY, NEAR_GREY], [RED, GREY], [NEAR_GREY, GREY]],
                 [GREYS, GREYS, scene, scene])
    hold_still_pixels(frames, 2, 1, tolerance=5)
    assert read_frames(frames, 2) == [[GREY, GREY], [GREY, GREY], [RED, GREY], [RED, GREY]]
