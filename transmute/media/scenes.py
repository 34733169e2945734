"""Where a clip's colours change, so that each part gets a palette of its own: at a cut (the colours change at
once), and within a shot whose colours drift (a pan to another place, lights going down).

Two frames are compared by their colour histograms (8 levels a channel, every PIXEL_STEP-th pixel): the L1
distance between them is 0 for the same colours and 2 for none in common. A cut in real footage measured 1.8;
camera motion, lighting, grain and screen scrolling at most 0.35 on the clips of docs/gif-quality.md. Drift is
measured between the mean histograms of a scene's two parts, at the point where they differ most.
"""

from __future__ import annotations

CUT_DISTANCE = 0.7
"""Histogram distance (0-2) between two frames from which the second starts a new scene."""
DRIFT_DISTANCE = 0.3
"""Distance (0-2) between the mean histograms of a scene's two parts from which it is split in two. Real footage
measured 0.36-1.2 where a camera panned or an animation's light changed (issue 13's SSIM +0.0003 to +0.0019 on
those), 0.04-0.22 on fixed cameras and screen recordings: at 0.2 a screen recording was split and its GIF grew
from 0.36 to 0.65 of gifski's size for +0.0001 SSIM (docs/gif-quality.md, "Palettes for drifting colours")."""
MIN_SCENE_FRAMES = 8
"""Frames a scene has at least, unless the caller says otherwise: a flash or a strobe does not get palettes of its
own."""
MIN_EDGE_SCENE_FRAMES = 3
"""Frames a scene at the clip's start or end has at least, when it is one steady shot: a span that starts just
before a cut, or ends just after one, shows a few frames of another shot, which the palette of the shot beside
them would draw badly."""
MAX_SCENES = 8
"""Most scenes a clip is cut into (the largest distances win): each costs a palette and a GIF to merge."""
PIXEL_STEP = 7


def colour_histograms(frames, pixel_step: int = PIXEL_STEP):
    """The colour histogram of each of `frames` (an array of frames x pixels x BGRA): rows of 512 bins (8 levels a
    channel, every `pixel_step`-th pixel), each summing to 1."""
    import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

    words = frames.view(np.uint32)[..., 0][:, ::pixel_step]  # B | G << 8 | R << 16 | A << 24
    bins = ((words >> 5) & 7) << 6  # the top 3 bits of B, G and R
    bins |= ((words >> 13) & 7) << 3
    bins |= (words >> 21) & 7
    histograms = np.stack([np.bincount(frame, minlength=512) for frame in bins]).astype(np.float32)
    histograms /= histograms.sum(axis=1, keepdims=True)
    return histograms


def scene_starts(histograms, min_frames: int = MIN_SCENE_FRAMES) -> list[int]:
    """The index of the first frame of each scene, from every frame's colour histogram (colour_histograms), each
    scene `min_frames` long at least (MIN_EDGE_SCENE_FRAMES at the clip's start or end): [0] for one scene."""
    import numpy as np

    count = len(histograms)
    if count < min_frames + min(min_frames, MIN_EDGE_SCENE_FRAMES):
        return [0]
    distances = np.abs(np.diff(histograms, axis=0)).sum(axis=1)

    def may_be_a_scene(first: int, end: int) -> bool:
        """Whether frames [first, end) may be a scene: `min_frames` long, or at the clip's start or end, one
        steady shot (no cut within) MIN_EDGE_SCENE_FRAMES long."""
        if end - first >= min_frames:
            return True
        steady = distances[first:end - 1].max(initial=0) < CUT_DISTANCE
        return (first == 0 or end == count) and end - first >= MIN_EDGE_SCENE_FRAMES and steady

    starts = [0]
    for after in np.argsort(distances)[::-1]:
        start = int(after) + 1
        if distances[after] < CUT_DISTANCE or len(starts) == MAX_SCENES:
            break
        before = max(other for other in starts if other < start)
        next_start = min([other for other in starts if other > start], default=count)
        if may_be_a_scene(before, start) and may_be_a_scene(start, next_start):
            starts.append(start)
    return _split_drifting(_merge_alike(sorted(starts), histograms), histograms, distances, min_frames)


def _merge_alike(starts: list[int], histograms) -> list[int]:
    """`starts` without those whose scene has, on average, the colours of the scene before (a flash in a shot
    gives two cuts, and the shot on both sides of it would become two scenes)."""
    import numpy as np

    kept = [0]
    for index, start in enumerate(starts[1:], start=1):
        end = starts[index + 1] if index + 1 < len(starts) else len(histograms)
        before = histograms[kept[-1]:start].mean(axis=0)
        if np.abs(histograms[start:end].mean(axis=0) - before).sum() >= CUT_DISTANCE:
            kept.append(start)
    return kept


def _split_drifting(starts: list[int], histograms, distances, min_frames: int) -> list[int]:
    """`starts` with a scene split in two, again and again up to MAX_SCENES, where its two parts' colours differ
    most, while that is DRIFT_DISTANCE or more (each part `min_frames` long at least). A scene holding a cut
    (`distances`: from each frame to the next) is a flash kept in its shot, not a drift, and stays whole."""
    import numpy as np

    def farthest_split(start: int, end: int) -> tuple[float, int] | None:
        """How far apart the colours of the scene [start, end) are where its two parts differ most, and where;
        None for a scene too short to split or holding a cut."""
        if end - start < 2 * min_frames or distances[start:end - 1].max() >= CUT_DISTANCE:
            return None
        before = np.cumsum(histograms[start:end], axis=0)  # row k: the first k + 1 frames' histograms summed
        lengths = np.arange(1, end - start + 1, dtype=np.float32)[:, None]
        parts = slice(min_frames - 1, end - start - min_frames)
        after = before[-1] - before[parts]
        drift = np.abs(before[parts] / lengths[parts] - after / (end - start - lengths[parts])).sum(axis=1)
        return float(drift.max()), start + min_frames + int(drift.argmax())

    splits = {}  # by scene (start, end): only the two halves of a split scene are measured anew
    while len(starts) < MAX_SCENES:
        scenes = list(zip(starts, [*starts[1:], len(histograms)], strict=True))
        for scene in scenes:
            if scene not in splits:
                splits[scene] = farthest_split(*scene)
        measured = [found for found in map(splits.get, scenes) if found is not None]
        if not measured:
            return starts
        drift, split = max(measured)
        if drift < DRIFT_DISTANCE:
            return starts
        starts = sorted([*starts, split])
    return starts
