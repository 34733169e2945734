"""Where a clip's shots change: the frames at which its colours change at once (a cut), so that each shot gets a
palette of its own.

Two frames are compared by their colour histograms (8 levels a channel, every PIXEL_STEP-th pixel): the L1
distance between them is 0 for the same colours and 2 for none in common. A cut in real footage measured 1.8;
camera motion, lighting, grain and screen scrolling at most 0.35 on the clips of docs/gif-quality.md.
"""

from __future__ import annotations

CUT_DISTANCE = 0.7
"""Histogram distance (0-2) between two frames from which the second starts a new scene."""
MIN_SCENE_FRAMES = 8
"""Frames (of those compared) a scene has at least: a flash or a strobe does not get palettes of its own."""
MAX_SCENES = 8
"""Most scenes a clip is cut into (the largest distances win): each costs a palette and a GIF to merge."""
PIXEL_STEP = 7


def scene_starts(frames) -> list[int]:
    """The index of the first frame of each scene in `frames` (an array of frames x pixels x BGRA): [0] for
    one scene."""
    import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

    if len(frames) < 2 * MIN_SCENE_FRAMES:
        return [0]
    levels = frames[:, ::PIXEL_STEP, :3] >> 5
    bins = (levels[..., 0].astype(np.intp) << 6) | (levels[..., 1].astype(np.intp) << 3) | levels[..., 2]
    histograms = np.stack([np.bincount(frame, minlength=512) for frame in bins]).astype(np.float32)
    histograms /= histograms.sum(axis=1, keepdims=True)
    distances = np.abs(np.diff(histograms, axis=0)).sum(axis=1)
    starts = [0]
    for after in np.argsort(distances)[::-1]:
        start = int(after) + 1
        if distances[after] < CUT_DISTANCE or len(starts) == MAX_SCENES:
            break
        if start >= MIN_SCENE_FRAMES and len(frames) - start >= MIN_SCENE_FRAMES \
                and all(abs(start - other) >= MIN_SCENE_FRAMES for other in starts):
            starts.append(start)
    return _merge_alike(sorted(starts), histograms)


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
