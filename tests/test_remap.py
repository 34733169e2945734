"""Mapping frames onto a palette (transmute.media.remap): each pixel takes the entry nearest in YCbCr, the same
colour always the same entry, and pixels under half alpha the transparent entry."""

from __future__ import annotations

import numpy as np

from transmute.media.quantize import TRANSPARENT
from transmute.media.remap import Remapper


def palette_of(*colours: tuple[int, int, int]) -> bytes:
    """A 256-entry BGRA palette laid out as quantize.make_palette's: `colours`, the last repeated, then the
    transparent entry."""
    entries = np.zeros((256, 4), np.uint8)
    entries[:, 3] = 255
    entries[:len(colours), :3] = colours
    entries[len(colours):255, :3] = colours[-1]
    entries[255] = TRANSPARENT
    return entries.tobytes()


def frame_of(*pixels: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(pixels, np.uint8)


BLACK, WHITE, BLUE, YELLOW = (0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 255)  # BGR


def test_each_pixel_takes_the_nearest_entry():
    remapper = Remapper(palette_of(BLACK, WHITE, BLUE, YELLOW))
    frame = frame_of((10, 12, 8, 255), (240, 250, 245, 255), (200, 30, 20, 255), (20, 220, 230, 255))
    assert remapper.indices(frame).tolist() == [0, 1, 2, 3]


def test_nearest_is_measured_in_ycbcr_where_rgb_would_choose_otherwise():
    # From mid-grey, a step of 25 in blue changes luma less than a step of 18 in green: RGB distance takes the
    # greener grey (324 against 625), YCbCr's the bluer one (169 against 204).
    grey, bluer, greener = (100, 100, 100), (125, 100, 100), (100, 118, 100)
    remapper = Remapper(palette_of(bluer, greener))
    assert remapper.indices(frame_of((*grey, 255))).tolist() == [0]


def test_the_same_colour_maps_to_the_same_entry_in_every_frame_and_no_opaque_one_to_the_transparent_entry():
    rng = np.random.default_rng(3)
    remapper = Remapper(palette_of(*(tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(255))))
    first = rng.integers(0, 256, (5000, 4), dtype=np.uint8)
    first[:, 3] = 255
    shuffled = first[rng.permutation(len(first))]
    once = dict(zip(map(bytes, first), remapper.indices(first).tolist(), strict=True))
    again = dict(zip(map(bytes, shuffled), remapper.indices(shuffled).tolist(), strict=True))
    assert once == again and max(once.values()) < 255


def test_pixels_under_half_alpha_take_the_transparent_entry():
    remapper = Remapper(palette_of(BLACK, WHITE))
    frame = frame_of((255, 255, 255, 0), (255, 255, 255, 127), (255, 255, 255, 128), (0, 0, 0, 255))
    assert remapper.indices(frame).tolist() == [255, 255, 1, 0]


def test_a_frame_after_another_maps_as_it_would_alone_whichever_of_its_pixels_changed():
    palette = palette_of(BLACK, WHITE, BLUE, YELLOW)
    first = frame_of((10, 12, 8, 255), (240, 250, 245, 255), (200, 30, 20, 255), (20, 220, 230, 255))
    # one pixel changes colour, one turns transparent, two stay
    second = frame_of((10, 12, 8, 255), (20, 220, 230, 255), (200, 30, 20, 10), (20, 220, 230, 255))
    remapper = Remapper(palette)
    remapper.indices(first)
    assert remapper.indices(second).tolist() == Remapper(palette).indices(second).tolist() == [0, 3, 255, 3]
    # and a frame changing most pixels, mapped all at once
    assert remapper.indices(first).tolist() == [0, 1, 2, 3]
