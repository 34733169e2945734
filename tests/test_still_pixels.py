"""Holding still pixels in a paletted clip (transmute.media.still_pixels): a pixel keeps what the GIF shows
until its new colour is more than the tolerance away, so grain on a still background is stored once."""

from __future__ import annotations

import numpy as np

from transmute.media import still_pixels
from transmute.media.still_pixels import StillPixels

GREY, NEAR_GREY, RED, PALE = 0, 1, 2, 3


def palette_of(entries: dict[int, tuple[int, int, int, int]]) -> bytes:
    palette = np.zeros((256, 4), dtype=np.uint8)
    for index, entry in entries.items():
        palette[index] = entry
    return palette.tobytes()


GREYS = palette_of({GREY: (100, 100, 100, 255), NEAR_GREY: (100, 100, 103, 255), RED: (0, 0, 200, 255),
                    PALE: (100, 100, 112, 255)})


def held(frames: list[list[int]], tolerance: int, palettes: list[bytes] | None = None) -> list[list[int]]:
    """The indices of 1-row pal8 frames after holding, by default all with GREYS: index 0 grey, 1 a grey 3 levels
    redder, 2 red, 3 a grey 12 levels redder (BGRA entries)."""
    palettes = palettes or [GREYS] * len(frames)
    still = StillPixels(len(frames[0]), 1, tolerance)
    shown = []
    for frame, palette in zip(frames, palettes, strict=True):
        data = bytearray(bytes(frame) + palette)
        assert len(data) == still.frame_bytes
        still.hold(data)
        assert data[len(frame):] == palette  # the palette is passed on as it was
        shown.append(list(data[:len(frame)]))
    return shown


def test_a_pixel_flickering_to_a_near_colour_keeps_the_first_and_a_real_change_shows():
    frames = [[GREY, GREY, GREY], [NEAR_GREY, RED, GREY], [GREY, NEAR_GREY, NEAR_GREY]]
    assert held(frames, 5) == [[GREY, GREY, GREY], [GREY, RED, GREY], [GREY, NEAR_GREY, GREY]]


def test_a_tolerance_under_the_difference_changes_nothing():
    frames = [[GREY, GREY], [NEAR_GREY, RED], [GREY, NEAR_GREY]]
    assert held(frames, 2) == frames


def test_a_frame_with_a_palette_of_its_own_starts_the_holding_again():
    # a new scene: its palette has grey at index 2 and red at index 0, so the same indices mean other colours
    scene = palette_of({RED: (100, 100, 100, 255), NEAR_GREY: (100, 100, 103, 255), GREY: (0, 0, 200, 255)})
    frames = [[GREY, GREY], [GREY, NEAR_GREY], [RED, GREY], [NEAR_GREY, GREY]]
    assert held(frames, 5, [GREYS, GREYS, scene, scene]) == [[GREY, GREY], [GREY, GREY], [RED, GREY], [RED, GREY]]


def held_looking_ahead(frames: list[list[int]], palettes: list[bytes] | None = None) -> list[list[int]]:
    """The indices of 1-row pal8 frames (GREYS by default) held at tolerance 5, flickers up to 16 held too."""
    palettes = palettes or [GREYS] * len(frames)
    still = StillPixels(len(frames[0]), 1, 5, flicker_tolerance=16)
    given = [bytearray(bytes(frame) + palette) for frame, palette in zip(frames, palettes, strict=True)]
    return [list(frame[:len(frames[0])]) for frame in still.held(given)]


def test_a_change_the_next_frame_undoes_is_held_and_one_that_lasts_shows_in_its_own_frame():
    frames = [[GREY, GREY, GREY], [PALE, PALE, GREY], [GREY, PALE, PALE], [GREY, PALE, PALE]]
    assert held_looking_ahead(frames) == [[GREY, GREY, GREY], [GREY, PALE, GREY], [GREY, PALE, PALE],
                                          [GREY, PALE, PALE]]


def test_a_flicker_larger_than_the_flicker_tolerance_shows():
    frames = [[GREY, GREY], [RED, PALE], [GREY, GREY]]
    assert held_looking_ahead(frames) == [[GREY, GREY], [RED, GREY], [GREY, GREY]]


def test_the_last_frame_and_the_last_of_a_scene_show_their_changes_having_nothing_to_look_ahead_to():
    scene = palette_of({GREY: (0, 0, 200, 255), PALE: (100, 100, 112, 255)})
    frames = [[GREY, GREY], [PALE, GREY], [GREY, GREY], [GREY, PALE]]
    assert held_looking_ahead(frames, [GREYS, GREYS, scene, scene]) == [[GREY, GREY], [PALE, GREY], [GREY, GREY],
                                                                         [GREY, PALE]]


def held_as_pictures(before: str, after: str) -> str:
    """The second of two pictures (rows of '.' grey, 'o' 5 levels redder) as the GIF shows it, held at tolerance
    4 with changes of 5 told from grain by their neighbours."""
    palette = palette_of({0: (100, 100, 100, 255), 1: (100, 100, 105, 255)})
    rows = [before.split(), after.split()]
    still = StillPixels(len(rows[0][0]), len(rows[0]), 4, grain_tolerance=5)
    frames = [bytearray(bytes(".o".index(pixel) for row in picture for pixel in row) + palette) for picture in rows]
    for frame in frames:
        still.hold(frame)
    shown = frames[1][:still.pixels]
    width = len(rows[0][0])
    return " ".join("".join(".o"[index] for index in shown[start:start + width])
                    for start in range(0, still.pixels, width))


def test_a_change_of_the_grain_tolerance_shows_where_its_neighbours_share_it_and_is_held_where_alone():
    still_picture = "...... ...... ...... ...... ...... ......"
    # a shadow over the left half, and one grain at the right
    after = "ooo... ooo... ooo... ooo... ooo.o. ooo..."
    # a pixel shows when at least 6 of the 9 around it (itself included) change: the shadow's corners wait
    assert held_as_pictures(still_picture, after) == ".o.... ooo... ooo... ooo... ooo... .o...."


def test_a_change_within_the_still_tolerance_is_held_whatever_its_neighbours_do():
    palette = palette_of({0: (100, 100, 100, 255), 1: (100, 100, 104, 255)})
    still = StillPixels(3, 3, 4, grain_tolerance=5)
    frames = [bytearray(bytes([index] * 9) + palette) for index in (0, 1)]
    for frame in frames:
        still.hold(frame)
    assert list(frames[1][:9]) == [0] * 9


def test_a_tolerance_of_0_holds_nothing_not_even_a_flicker_or_a_lone_change():
    still = StillPixels(2, 1, 0, flicker_tolerance=16, grain_tolerance=5)
    given = [bytearray(bytes(frame) + GREYS) for frame in ([GREY, GREY], [PALE, NEAR_GREY], [GREY, GREY])]
    assert [list(frame[:2]) for frame in still.held(given)] == [[GREY, GREY], [PALE, NEAR_GREY], [GREY, GREY]]


def test_a_change_the_next_frame_takes_partly_back_is_held_and_one_that_goes_on_shows():
    six = 4  # a grey 6 levels redder: past the tolerance of 5 from grey, and from PALE
    palette = palette_of({GREY: (100, 100, 100, 255), PALE: (100, 100, 112, 255), six: (100, 100, 106, 255)})
    # the first pixel jumps 12 levels, then falls back to 6; the second goes on from 6 to 12
    frames = [[GREY, GREY], [PALE, six], [six, PALE]]
    assert held_looking_ahead(frames, [palette] * 3) == [[GREY, GREY], [GREY, six], [six, PALE]]


def held_with_noise(before: list[str], after: list[str]) -> list[str]:
    """The second of two pictures (rows of '.' grey, '+' 6 levels redder, '-' 6 levels less red) as the GIF shows
    it, held at tolerance 4 with changes up to 8 told from noise by their neighbourhood's mean."""
    palette = palette_of({0: (100, 100, 100, 255), 1: (100, 100, 106, 255), 2: (100, 100, 94, 255)})
    still = StillPixels(len(before[0]), len(before), 4, grain_tolerance=5, noise_tolerance=8)
    frames = [bytearray(bytes(".+-".index(pixel) for row in picture for pixel in row) + palette)
              for picture in (before, after)]
    for frame in frames:
        still.hold(frame)
    shown = "".join(".+-"[index] for index in frames[1][:still.pixels])
    return [shown[start:start + still.width] for start in range(0, still.pixels, still.width)]


def checkerboard(width: int, height: int) -> list[str]:
    return ["".join("+-"[(row + column) % 2] for column in range(width)) for row in range(height)]


def test_noise_all_over_the_picture_that_cancels_out_around_each_pixel_is_held():
    still_picture = ["." * 12] * 12
    assert held_with_noise(still_picture, checkerboard(12, 12)) == still_picture


def test_a_change_as_large_as_the_noise_that_a_whole_neighbourhood_shares_shows():
    still_picture = ["." * 12] * 12
    # a shadow (here a redder light) over the top half: its mean moves with it
    after = ["+" * 12] * 6 + checkerboard(12, 6)
    assert held_with_noise(still_picture, after) == ["+" * 12] * 6 + ["." * 12] * 6


def test_noise_on_a_small_patch_of_a_clean_picture_shows():
    still_picture = ["." * 20] * 20
    # 16 of 400 pixels: a texture moving on a patch, not noise all over
    after = ["." * 20] * 8 + ["." * 8 + row + "." * 8 for row in checkerboard(4, 4)] + ["." * 20] * 8
    assert held_with_noise(still_picture, after) == after


def bgra_frames(*columns: list[int]) -> list[np.ndarray]:
    """Grey BGRA frames of one row, pixel i of frame n at level columns[i][n]."""
    return [np.array([[level, level, level, 255] for level in frame], np.uint8) for frame in zip(*columns, strict=True)]


def levels(frames) -> list[list[int]]:
    return [frame[:, 0].tolist() for frame in frames]


def test_each_scenes_first_frame_shows_its_still_pixels_as_their_mean_and_the_rest_as_they_were():
    grain = [103, 104, 98, 102, 100, 96, 104, 93]
    moving = [0, 30, 60, 90, 120, 150, 180, 210]
    scene = bgra_frames(grain, moving)  # the grey's mean is 100, within 8 levels throughout
    still = StillPixels(2, 1, 4, settle_tolerance=8)
    shown = list(still.settled([frame.copy() for frame in scene + scene], starts=[0, 8]))
    # the first frame's 103 becomes the mean; the moving pixel, and every later frame, are untouched
    assert levels(shown) == [[100, 0], *levels(scene[1:]), [100, 0], *levels(scene[1:])]
    assert shown[0][0, 3] == 255


def test_a_scene_shorter_than_the_frames_settled_over_is_settled_over_its_own_frames():
    still = StillPixels(1, 1, 4, settle_tolerance=8)
    shown = list(still.settled(bgra_frames([90, 100, 104, 96]), starts=[0, 2]))
    assert levels(shown) == [[95], [100], [100], [96]]


def test_large_frames_are_settled_over_as_many_as_fit_the_memory_allowed(monkeypatch):
    monkeypatch.setattr(still_pixels, "SETTLE_MB", 2.5 * 8 / (1024 * 1024))  # two and a half 2-pixel frames
    monkeypatch.setattr(still_pixels, "SETTLE_CHUNK", 1)  # and each pixel's mean taken on its own
    still = StillPixels(2, 1, 4, settle_tolerance=8)
    shown = levels(still.settled(bgra_frames([90, 100, 104, 96], [50, 52, 54, 56]), starts=[0]))
    assert shown == [[95, 51], [100, 52], [104, 54], [96, 56]]


def test_frames_with_noise_all_over_are_left_for_the_noise_rule_and_nothing_is_settled_without_holding():
    noise = bgra_frames(*[[100, 107, 100, 107, 100, 107, 100, 107]] * 16)  # every pixel 7 levels, frame to frame
    grain = bgra_frames(*[[100, 103, 100, 103, 100, 103, 100, 103]] * 16)
    with_noise_rule = StillPixels(16, 1, 4, grain_tolerance=5, noise_tolerance=8, settle_tolerance=8)
    assert levels(with_noise_rule.settled(noise, starts=[0])) == levels(noise)
    repeated = bgra_frames(*[[100, 100, 107, 107, 100, 100, 107, 107]] * 16)  # a source at half the GIF's rate
    assert levels(with_noise_rule.settled(repeated, starts=[0])) == levels(repeated)
    assert levels(with_noise_rule.settled(grain, starts=[0]))[0] == [102] * 16
    assert levels(StillPixels(16, 1, 4, settle_tolerance=8).settled(noise, starts=[0]))[0] == [104] * 16
    assert levels(StillPixels(16, 1, 0, settle_tolerance=8).settled(grain, starts=[0])) == levels(grain)
    assert levels(StillPixels(16, 1, 4).settled(grain, starts=[0])) == levels(grain)
