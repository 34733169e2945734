"""Finding a clip's scenes (transmute.media.scenes) from its frames' colours: a cut starts a scene, and so does
a shot drifting to other colours; grain, motion and a flash do not."""

from __future__ import annotations

import itertools

import numpy as np

from transmute.media import scenes
from transmute.media.scenes import (
    MAX_SCENES,
    MIN_EDGE_SCENE_FRAMES,
    MIN_SCENE_FRAMES,
    colour_histograms,
    scene_starts,
)

PIXELS = 700


def frames_of(*colours: tuple[int, int, int], grain: float = 3.0) -> np.ndarray:
    """One frame of PIXELS BGRA pixels per colour given, each pixel the colour plus some grain."""
    rng = np.random.default_rng(3)
    base = np.asarray(colours, dtype=np.float32)[:, None, :]
    bgr = np.clip(base + rng.normal(0, grain, (len(colours), PIXELS, 3)), 0, 255).astype(np.uint8)
    return np.concatenate([bgr, np.full((len(colours), PIXELS, 1), 255, np.uint8)], axis=2)


def starts_of(frames: np.ndarray) -> list[int]:
    """The first frame of each scene of `frames`, found from their colour histograms."""
    return scene_starts(colour_histograms(frames))


SKY, GRASS, NIGHT = (230, 180, 120), (40, 160, 60), (60, 20, 20)


def test_a_cut_from_one_shot_to_another_starts_a_scene():
    assert starts_of(frames_of(*[SKY] * 20, *[NIGHT] * 15)) == [0, 20]


def test_one_shot_with_grain_is_one_scene():
    assert starts_of(frames_of(*[GRASS] * 40, grain=12)) == [0]


def test_an_object_crossing_a_still_background_is_one_scene():
    frames = frames_of(*[SKY] * 40)
    for index, frame in enumerate(frames):  # a grass-coloured box, a fifth of the picture, moving along
        frame[index * 10: index * 10 + PIXELS // 5, :3] = GRASS
    assert starts_of(frames) == [0]


def test_a_shot_whose_colours_drift_far_is_split_into_scenes_of_a_palette_each():
    # 40 frames from day to night (a pan, lights going down): each frame barely differs from the one before
    dusk = [tuple(round(a + (b - a) * step / 39) for a, b in zip(SKY, NIGHT, strict=True)) for step in range(40)]
    starts = starts_of(frames_of(*dusk))
    assert 2 <= len(starts) <= MAX_SCENES
    assert all(later - earlier >= MIN_SCENE_FRAMES for earlier, later in itertools.pairwise([*starts, len(dusk)]))


def test_scenes_split_however_little_their_colours_drift_keep_min_scene_frames(monkeypatch):
    monkeypatch.setattr(scenes, "DRIFT_DISTANCE", 0.0)  # any drift at all splits, until no scene can be
    frames = frames_of(*[SKY] * (3 * MIN_SCENE_FRAMES + 2))
    starts = starts_of(frames)
    assert 2 <= len(starts) <= MAX_SCENES and starts == sorted(set(starts))
    assert all(later - earlier >= MIN_SCENE_FRAMES for earlier, later in itertools.pairwise([*starts, len(frames)]))


def test_a_flash_shorter_than_a_scene_gets_no_scene_of_its_own():
    flash = MIN_SCENE_FRAMES - 1
    assert starts_of(frames_of(*[SKY] * 20, *[NIGHT] * flash, *[SKY] * 20)) == [0]
    assert starts_of(frames_of(*[SKY] * 20, *[NIGHT] * MIN_SCENE_FRAMES, *[SKY] * 20)) == [0, 20, 28]


def test_a_few_frames_of_another_shot_at_the_clips_end_get_a_scene_of_their_own():
    assert starts_of(frames_of(*[SKY] * 20, *[NIGHT] * MIN_EDGE_SCENE_FRAMES)) == [0, 20]
    assert starts_of(frames_of(*[SKY] * 20, *[NIGHT] * (MIN_EDGE_SCENE_FRAMES - 1))) == [0]


def test_a_few_frames_of_another_shot_at_the_clips_start_get_a_scene_of_their_own():
    assert starts_of(frames_of(*[NIGHT] * MIN_EDGE_SCENE_FRAMES, *[SKY] * 20)) == [0, MIN_EDGE_SCENE_FRAMES]
    assert starts_of(frames_of(*[NIGHT] * (MIN_EDGE_SCENE_FRAMES - 1), *[SKY] * 20)) == [0]


def test_a_strobe_at_the_clips_end_gets_no_scene_of_its_own():
    assert starts_of(frames_of(*[SKY] * 20, NIGHT, GRASS, NIGHT, GRASS)) == [0]


def test_a_clip_is_cut_into_at_most_max_scenes():
    shots = [SKY, GRASS, NIGHT] * 4
    frames = frames_of(*[colour for shot in shots for colour in [shot] * MIN_SCENE_FRAMES])
    starts = starts_of(frames)
    assert len(starts) == MAX_SCENES and starts[0] == 0 and all(start % MIN_SCENE_FRAMES == 0 for start in starts)


def test_too_short_a_clip_is_one_scene():
    assert starts_of(frames_of(SKY, NIGHT)) == [0]
