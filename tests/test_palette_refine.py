"""Refining palettegen's palette with k-means (transmute.media.palette_refine): each colour moves to the mean of
the pixels nearest to it, transparent and unused entries stay, and the palette never gains colours."""

from __future__ import annotations

import numpy as np

from transmute.media.palette_refine import refine_palette, sample_pixels

TRANSPARENT = (0, 255, 0, 0)  # palettegen's reserved entry (BGRA)


def palette_of(*colours: tuple[int, int, int, int]) -> bytes:
    """A 256-entry BGRA palette: `colours`, the last of them repeated (as palettegen pads), then TRANSPARENT."""
    entries = list(colours) + [colours[-1]] * (255 - len(colours)) + [TRANSPARENT]
    return np.asarray(entries, dtype=np.uint8).tobytes()


def entries(palette: bytes) -> np.ndarray:
    return np.frombuffer(palette, dtype=np.uint8).reshape(256, 4)


def two_clusters(count: int = 4000) -> np.ndarray:
    """BGR pixels around a dark blue (40, 20, 10) and a light orange (60, 150, 230), with some spread."""
    rng = np.random.default_rng(1)
    centres = np.asarray([(40, 20, 10), (60, 150, 230)], dtype=np.float32)
    return (centres[rng.integers(0, 2, count)] + rng.normal(0, 4, (count, 3))).astype(np.float32)


def test_each_colour_moves_to_the_mean_of_the_pixels_nearest_to_it():
    pixels = two_clusters()
    before = palette_of((0, 0, 0, 255), (128, 128, 128, 255))
    after = entries(refine_palette(before, pixels, rounds=4))
    assert np.abs(after[0, :3].astype(int) - (40, 20, 10)).max() <= 2
    assert np.abs(after[1, :3].astype(int) - (60, 150, 230)).max() <= 2


def test_the_transparent_entry_stays_and_the_padding_moves_with_its_colour():
    after = entries(refine_palette(palette_of((0, 0, 0, 255), (128, 128, 128, 255)), two_clusters(), rounds=4))
    assert tuple(after[255]) == TRANSPARENT
    assert len({tuple(entry) for entry in after}) == 3  # two colours and the transparent entry, as before
    assert (after[1:255] == after[1]).all()


def test_a_colour_no_pixel_is_near_stays_where_it_is():
    far = (250, 0, 250, 255)
    after = entries(refine_palette(palette_of((0, 0, 0, 255), far, (128, 128, 128, 255)), two_clusters(), 4))
    assert tuple(after[1]) == far


def test_no_pixels_or_no_rounds_leave_the_palette_as_it_was():
    palette = palette_of((0, 0, 0, 255), (128, 128, 128, 255))
    assert refine_palette(palette, np.empty((0, 3), np.float32), rounds=8) == palette
    assert refine_palette(palette, two_clusters(), rounds=0) == palette


def test_the_sample_leaves_out_transparent_pixels_and_is_the_same_every_time(tmp_path):
    frames = tmp_path / "frames.bgra"  # two 4-pixel frames: half transparent magenta, half opaque grey
    frame = [(255, 0, 255, 0), (255, 0, 255, 0), (90, 90, 90, 255), (90, 90, 90, 255)]
    frames.write_bytes(np.asarray(frame * 2, dtype=np.uint8).tobytes())
    first = sample_pixels(frames, 4, count=200)
    assert 0 < len(first) < 200 and (first == 90).all()
    assert np.array_equal(first, sample_pixels(frames, 4, count=200))


def test_every_nth_frame_is_sampled_when_asked(tmp_path):
    frames = tmp_path / "frames.bgra"  # frames of one pixel: grey levels 0, 1, 2, 3, 4, 5
    frames.write_bytes(b"".join(bytes((level, level, level, 255)) for level in range(6)))
    assert set(sample_pixels(frames, 1, step=3, count=100)[:, 0].tolist()) == {0.0, 3.0}
