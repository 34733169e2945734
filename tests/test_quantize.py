"""transmute's own palette (transmute.media.quantize): median cut over a sample of the frames' pixels, then
k-means; laid out as palettegen's, with the last entry transparent."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from transmute.media.quantize import (
    TRANSPARENT,
    distinct,
    kmeans,
    make_palette,
    median_cut,
    palette_error,
    read_frames,
    refine_palette,
    sample_pixels,
)


def entries(palette: bytes) -> np.ndarray:
    return np.frombuffer(palette, dtype=np.uint8).reshape(256, 4)


def clusters(*centres: tuple[int, int, int], count: int = 6000, spread: float = 4.0) -> np.ndarray:
    """BGR pixels spread around `centres`, as many around each."""
    rng = np.random.default_rng(1)
    at = np.asarray(centres, dtype=np.float32)
    return np.clip(at[rng.integers(0, len(at), count)] + rng.normal(0, spread, (count, 3)), 0, 255).astype(
        np.float32)


DARK_BLUE, LIGHT_ORANGE, GREEN = (120, 20, 10), (60, 150, 230), (40, 200, 30)


def test_two_colours_of_a_two_coloured_picture_are_its_two_colours():
    palette = entries(make_palette(clusters(DARK_BLUE, LIGHT_ORANGE), colours=3, rounds=4))
    found = sorted(tuple(entry[:3].astype(int)) for entry in palette[:2])
    assert np.abs(np.asarray(found) - sorted([DARK_BLUE, LIGHT_ORANGE])).max() <= 2


def test_the_last_entry_is_transparent_and_the_unused_ones_repeat_the_last_colour():
    palette = entries(make_palette(clusters(DARK_BLUE, LIGHT_ORANGE, GREEN), colours=16, rounds=4))
    assert tuple(palette[255]) == TRANSPARENT
    assert len({tuple(entry) for entry in palette[:255]}) == 15
    assert (palette[15:255] == palette[14]).all() and (palette[:255, 3] == 255).all()


@pytest.mark.parametrize("colours", [2, 5, 256])
def test_a_palette_never_has_more_colours_than_asked_one_kept_for_transparency(colours):
    palette = entries(make_palette(clusters(DARK_BLUE, LIGHT_ORANGE, GREEN, spread=30), colours, rounds=4))
    assert len({tuple(entry) for entry in palette[:255]}) == colours - 1


def test_a_flat_picture_gets_its_one_colour_and_no_pixels_an_opaque_black():
    flat = entries(make_palette(np.tile(np.float32([10, 20, 30]), (500, 1)), colours=256, rounds=8))
    assert {tuple(entry) for entry in flat} == {(10, 20, 30, 255), TRANSPARENT}
    empty = entries(make_palette(np.empty((0, 3), np.float32), colours=256, rounds=8))
    assert {tuple(entry) for entry in empty} == {(0, 0, 0, 255), TRANSPARENT}


def test_kmeans_moves_each_centre_to_the_mean_of_its_points_and_leaves_a_lonely_one():
    points = clusters((20, 20, 20), (100, 100, 100), spread=3)
    moved = kmeans(points, np.float32([[40, 40, 40], [80, 80, 80], [250, 0, 250]]), rounds=5)
    dark = points[:, 0] < 60
    assert np.abs(moved[:2] - [points[dark].mean(axis=0), points[~dark].mean(axis=0)]).max() < 0.01
    assert moved[2].tolist() == [250, 0, 250]


def test_kmeans_lowers_the_error_median_cut_leaves():
    points = clusters(DARK_BLUE, LIGHT_ORANGE, GREEN, (200, 200, 200), spread=25)

    def error(centres):
        return ((points[:, None, :] - centres[None]) ** 2).sum(axis=2).min(axis=1).mean()

    cut = median_cut(points, 8)
    assert len(cut) == 8 and error(kmeans(points, cut, rounds=8)) < error(cut)


def test_kmeans_over_the_distinct_colours_with_their_counts_moves_the_centres_as_over_every_pixel():
    # a screen-like sample: a few colours, each many times
    points = np.repeat(clusters(DARK_BLUE, LIGHT_ORANGE, GREEN, count=300, spread=20).round(), 40, axis=0)
    colours, counts = distinct(points)
    assert len(colours) <= 300 and counts.sum() == len(points)
    start = median_cut(points, 8)
    assert np.abs(kmeans(colours, start, rounds=8, weights=counts) - kmeans(points, start, rounds=8)).max() < 1e-3


def test_a_picture_of_few_colours_never_draws_the_larger_sample():
    def refused():
        raise AssertionError("a larger sample was drawn for a picture its palette already fits")

    make_palette(clusters(DARK_BLUE, LIGHT_ORANGE, GREEN), colours=256, rounds=4, more_pixels=refused)


def test_a_textured_picture_is_refined_over_the_larger_sample_which_it_then_fits_better():
    rng = np.random.default_rng(5)
    texture = rng.uniform(0, 255, (20_000, 3)).astype(np.float32)  # every colour: the cut leaves a large error
    larger = rng.uniform(0, 255, (80_000, 3)).astype(np.float32)
    drawn: list[int] = []

    def more_pixels():
        drawn.append(len(larger))
        return larger

    def error(palette: bytes) -> float:
        colours = entries(palette)[:255, :3].astype(np.float32)
        return float(((larger[:, None, :] - colours[None]) ** 2).sum(axis=2).min(axis=1).mean())

    refined = make_palette(texture, colours=64, rounds=0, more_pixels=more_pixels)
    assert drawn == [len(larger)]
    assert error(refined) < error(make_palette(texture, colours=64, rounds=0))


def test_the_sample_leaves_out_transparent_pixels_and_is_the_same_every_time(tmp_path):
    frames = tmp_path / "frames.bgra"  # two 4-pixel frames: half transparent magenta, half opaque grey
    frame = [(255, 0, 255, 0), (255, 0, 255, 0), (90, 90, 90, 255), (90, 90, 90, 255)]
    frames.write_bytes(np.asarray(frame * 2, dtype=np.uint8).tobytes())
    first = sample_pixels(read_frames(frames, 4), count=200)
    assert 0 < len(first) < 200 and (first == 90).all()
    assert np.array_equal(first, sample_pixels(read_frames(frames, 4), count=200))


def test_a_sample_of_every_nth_frame_draws_from_those_frames_only(tmp_path):
    frames = tmp_path / "frames.bgra"  # frames of one pixel: grey levels 0, 1, 2, 3, 4, 5
    frames.write_bytes(b"".join(bytes((level, level, level, 255)) for level in range(6)))
    assert set(sample_pixels(read_frames(frames, 1)[::3], count=100)[:, 0].tolist()) == {0.0, 3.0}
    assert len(read_frames(tmp_path / "frames.bgra", 7)) == 0  # too short for one frame of 7 pixels


WHILE_PROCESSES_START = """
import subprocess
import threading
import time
import numpy as np
from transmute.media.process import child_options
from transmute.media.quantize import make_palette

pixels = np.random.default_rng(1).random((50_000, 3), dtype=np.float32) * 255
threads = [threading.Thread(target=lambda: [make_palette(pixels, 256, 8) for _ in range(6)], daemon=True),
           threading.Thread(target=lambda: [subprocess.run(["true"], **child_options()) for _ in range(100)],
                            daemon=True)]
for thread in threads:
    thread.start()
deadline = time.monotonic() + 30
for thread in threads:
    thread.join(max(0.0, deadline - time.monotonic()))
raise SystemExit(sum(thread.is_alive() for thread in threads))
"""


def test_a_palette_is_made_while_another_conversion_starts_its_processes():
    # A worker converts in threads: one starts ffmpeg (a fork) while another makes its palette. OpenBLAS stops
    # its thread pool at each fork, and a matrix product waiting on that pool then waited for ever. A fresh
    # process: what prevents it is process-wide, and another test may have done it here already.
    done = subprocess.run([sys.executable, "-c", WHILE_PROCESSES_START], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, f"{done.returncode} thread(s) still running after 30 s: {done.stderr}"


def test_a_palette_refined_towards_colours_that_drifted_draws_them_closer_and_keeps_its_transparent_entry():
    palette = make_palette(clusters((40, 90, 160), (170, 60, 30), spread=12.0), 8, 8)
    part = clusters((50, 100, 150), (160, 70, 40), spread=12.0)  # the same picture, 10 levels off
    refined = refine_palette(palette, part, 10)
    assert palette_error(refined, part) < 0.8 * palette_error(palette, part)
    assert tuple(entries(refined)[-1]) == TRANSPARENT and (entries(refined)[:-1, 3] == 255).all()


def test_a_palette_holding_every_colour_of_the_pixels_draws_them_without_error():
    pixels = np.asarray([[10, 20, 30], [200, 100, 0]] * 50, np.float32)
    assert palette_error(make_palette(pixels, 16, 8), pixels) == pytest.approx(0.0, abs=0.01)
