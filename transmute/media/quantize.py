"""Choosing a clip's palette: median cut over a sample of its pixels, then a few rounds of k-means (Lloyd's
algorithm), as libimagequant (gifski's quantizer) does.

ffmpeg's palettegen stops at the median cut, measures in RGB and histograms every pixel of the frames it sees:
on real footage its palette scored 0.002 to 0.011 lower SSIM than this one, and took 0.1 to 0.4 s more
(docs/gif-quality.md, "Palette by k-means"). Here the colours are chosen in YCbCr, where an error counts the way
the eye (and SSIM in yuv444p) sees it: median cut splits the box of pixels with the largest squared error at
the median of its widest channel, then each colour moves to the mean of the pixels nearest to it.

The frames and the palette are ffmpeg's `bgra` rawvideo. The palette is laid out as palettegen's: the colours,
the last one repeated up to entry 255, which is transparent (pixels under alpha 128 map to it, in
transmute.media.remap as in paletteuse).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

PALETTE_ENTRIES = 256
TRANSPARENT = (0, 255, 0, 0)
"""The last entry, kept for transparency (palettegen's, BGRA)."""
OPAQUE_FROM = 128
"""Pixels with alpha under this are transparent in the GIF; only the others are sampled."""
SAMPLE_PIXELS = 50_000
"""Pixels drawn for the palette: more changed SSIM by under 0.0005 on the clips measured, and cost time (except on
textured pictures, see TEXTURED_ERROR)."""
SEED = 20261130
"""The sample is drawn with a fixed seed: the same source and options give the same GIF."""
TEXTURED_ERROR = 12.0
"""Mean squared error (YCbCr levels) the median cut leaves at or past which a picture counts as textured: real
clips measured 18-29 on animation (painted grass and fur), 9-11 on street scenes and 0.4-6 on screen recordings,
fixed cameras and people indoors. There, more k-means over more pixels raised issue 13's SSIM by 0.0009-0.0012
for about 0.1 s (elsewhere it gained nothing: docs/gif-quality.md, "Mini-batch k-means on textured pictures")."""
TEXTURED_ROUNDS = 24
LARGER_SAMPLE = 4
"""How many times more pixels a textured picture's larger sample has."""
BATCH_PIXELS = 25_000
"""Pixels each mini-batch round of a textured picture is drawn from the larger sample."""
GRAY_CHROMA = 1e-3
"""A centre whose Cb and Cr are both within this of 0 is the mean of gray pixels, off only by float rounding: it is
written as a gray (B = G = R = its Y), where rounding each channel on its own could give (208, 208, 207) and put
colour in a grayscale GIF."""
CHUNK = 2048
"""Pixels whose distances to every colour are computed at once (2048 x 256 float32: 2 MiB, in the CPU's cache)."""

@cache
def _one_blas_thread() -> None:
    """numpy's OpenBLAS on one thread, in this whole process. OpenBLAS stops its thread pool whenever the
    process forks (a pthread_atfork handler), and a matrix product of another thread waiting on that pool then
    waits for ever: a worker converts in threads, and one starts ffmpeg while another makes its palette. On one
    thread OpenBLAS has no pool; these products (thousands of colours by 3 by 256) are no slower so."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def load_array_libraries() -> None:
    """Import numpy (with numpy.random, which sample_pixels uses, and numpy.ma, which np.unique imports at its
    first call: about 10 ms of transmute.media.remap's first frame) and put its OpenBLAS on one thread
    (_one_blas_thread): what the first palette of a process otherwise waits for (about 0.2 s). Meant for a
    thread of its own: a failure is left to the import that needs numpy, which raises it where it is handled."""
    with contextlib.suppress(ImportError):
        import numpy.ma
        import numpy.random  # noqa: F401

        _one_blas_thread()


# BT.601 RGB -> YCbCr, columns B, G, R (the rawvideo's byte order); the offsets cancel in distances.
_TO_YCBCR = ((0.114, 0.587, 0.299), (0.5, -0.331264, -0.168736), (-0.081312, -0.418688, 0.5))


def to_ycbcr(bgr):
    """Rows of B, G, R (float32) as rows of Y, Cb, Cr without their offsets: the space colours are compared in
    (also by transmute.media.remap)."""
    import numpy as np

    _one_blas_thread()
    return bgr @ np.asarray(_TO_YCBCR, np.float32).T


def read_frames(path: Path, frame_pixels: int):
    """The frames of the `bgra` rawvideo file `path`, read-only and mapped, not loaded (an array of frames x
    pixels x BGRA; slicing it, as frames[::n], reads nothing either)."""
    import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

    frame_count = Path(path).stat().st_size // (frame_pixels * 4)
    if frame_count == 0:
        return np.empty((0, frame_pixels, 4), np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(frame_count, frame_pixels, 4))


def sample_pixels(frames, count: int = SAMPLE_PIXELS):
    """`count` pixels (B, G, R as float32 rows) drawn with SEED from `frames` (from read_frames), leaving out the
    transparent ones."""
    import numpy as np

    if len(frames) == 0:
        return np.empty((0, 3), np.float32)
    frame_pixels = frames.shape[1]
    picks = np.random.default_rng(SEED).integers(0, len(frames) * frame_pixels, count)
    rows = np.asarray(frames[picks // frame_pixels, picks % frame_pixels])
    return rows[rows[:, 3] >= OPAQUE_FROM, :3].astype(np.float32)


def median_cut(points, colours: int):
    """Up to `colours` centres of `points` (rows): the box with the largest squared error is split at the median
    of its widest channel, until there are `colours` boxes or none holds two different points."""
    import numpy as np

    def measured(box):
        """The variance of `box` per channel (its widest channel is where it splits) and its squared error."""
        spread = box.var(axis=0)
        return spread, float(spread.sum()) * len(box)

    spread, error = measured(points)
    boxes, spreads, errors = [points], [spread], [error]
    while len(boxes) < colours:
        worst = int(np.argmax(errors))
        if errors[worst] <= 0:
            break
        box, half = boxes[worst], len(boxes[worst]) // 2
        box = box[np.argpartition(box[:, int(np.argmax(spreads[worst]))], half)]
        boxes[worst] = box[:half]
        spreads[worst], errors[worst] = measured(box[:half])
        boxes.append(box[half:])
        spread, error = measured(box[half:])
        spreads.append(spread)
        errors.append(error)
    return np.asarray([box.mean(axis=0) for box in boxes], np.float32)


def nearest(points, centres, *, with_distances: bool = False):
    """For each of `points`, the index of the nearest of `centres`; with `with_distances`, also its squared
    distance to it (a second array)."""
    import numpy as np

    _one_blas_thread()
    indices = np.empty(len(points), np.intp)
    squared = np.empty(len(points), np.float32) if with_distances else None
    # |p - c|^2 less |p|^2, which is the same for every centre
    towards, centre_norms = -2 * centres.T, (centres * centres).sum(axis=1)
    for start in range(0, len(points), CHUNK):
        chunk = points[start:start + CHUNK]
        distances = chunk @ towards
        distances += centre_norms
        indices[start:start + CHUNK] = closest = distances.argmin(axis=1)
        if squared is not None:
            squared[start:start + CHUNK] = (distances[np.arange(len(chunk)), closest]
                                            + (chunk * chunk).sum(axis=1))
    return (indices, squared) if with_distances else indices


def kmeans(points, centres, rounds: int, weights=None):
    """`centres` after `rounds` of Lloyd's algorithm over `points`, each counted `weights` times (once when
    None): each centre moves to the mean of the points nearest to it (a centre no point is nearest to stays)."""
    import numpy as np

    centres = centres.copy()
    weighted = points if weights is None else points * weights[:, None]
    for _ in range(rounds):
        closest = nearest(points, centres)
        counts = np.bincount(closest, weights=weights, minlength=len(centres))
        used = counts > 0
        for channel in range(centres.shape[1]):
            sums = np.bincount(closest, weights=weighted[:, channel], minlength=len(centres))
            centres[used, channel] = sums[used] / counts[used]
    return centres


def distinct(pixels):
    """The distinct rows of `pixels` (B, G, R as float32, from sample_pixels) and how many times each occurs:
    a sample of a screen recording or a still scene holds a few thousand colours in 50,000 pixels."""
    import numpy as np

    keys = pixels.astype(np.int32) @ np.asarray([1, 1 << 8, 1 << 16], np.int32)
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return pixels[first], counts.astype(np.float64)


def _colours_of(palette: bytes):
    """The distinct colours of a palette from make_palette (B, G, R as float32 rows), its transparent entry left out."""
    import numpy as np

    entries = np.frombuffer(palette, np.uint8).reshape(PALETTE_ENTRIES, 4)[:-1, :3]
    return np.unique(entries, axis=0).astype(np.float32)


def palette_error(palette: bytes, pixels) -> float:
    """The mean squared error (YCbCr levels) `palette` draws `pixels` (from sample_pixels) with."""
    if not len(pixels):
        return 0.0
    return float(nearest(to_ycbcr(pixels), to_ycbcr(_colours_of(palette)), with_distances=True)[1].mean())


def refine_palette(palette: bytes, pixels, rounds: int) -> bytes:
    """`palette` (from make_palette) moved towards `pixels` (from sample_pixels; a part of the frames it was made
    for) by `rounds` of k-means from its own colours."""
    import numpy as np

    centres = _colours_of(palette)
    if not len(pixels) or len(centres) < 2:
        return palette
    entries = np.frombuffer(palette, np.uint8).reshape(PALETTE_ENTRIES, 4).copy()
    _fill(entries, kmeans(to_ycbcr(pixels), to_ycbcr(centres), rounds))
    return entries.tobytes()


def make_palette(pixels, colours: int, rounds: int, more_pixels: Callable[[], Any] | None = None) -> bytes:
    """The 256-entry `bgra` palette for `pixels` (from sample_pixels): `colours` entries in all, one of them
    the transparent one (as palettegen's max_colors counts). `more_pixels()`, when given, draws a larger sample
    of the same frames, for a textured picture (see TEXTURED_ERROR): k-means then runs TEXTURED_ROUNDS rounds,
    each over BATCH_PIXELS of them drawn afresh (mini-batch k-means), instead of `rounds` over `pixels`, which
    it takes as their distinct colours, each counted as often as it occurs (the same centres, 2-3 times faster
    on a screen recording or a still scene, whose 50,000 pixels hold 3,000-4,000 colours)."""
    import numpy as np

    _one_blas_thread()
    entries = np.zeros((PALETTE_ENTRIES, 4), np.uint8)
    entries[:, 3] = 255
    entries[-1] = TRANSPARENT
    if len(pixels):
        points = to_ycbcr(pixels)
        centres = median_cut(points, max(1, min(colours, PALETTE_ENTRIES) - 1))
        colours_seen, counts = distinct(pixels)
        distinct_points = to_ycbcr(colours_seen)
        error = float(np.average(nearest(distinct_points, centres, with_distances=True)[1], weights=counts))
        if more_pixels is not None and error >= TEXTURED_ERROR:
            pool = to_ycbcr(more_pixels())
            draws = np.random.default_rng(SEED)
            for _ in range(TEXTURED_ROUNDS):
                centres = kmeans(pool[draws.integers(0, len(pool), BATCH_PIXELS)], centres, 1)
        else:
            centres = kmeans(distinct_points, centres, rounds, counts)
        _fill(entries, centres)
    return entries.tobytes()


def _fill(entries, centres) -> None:
    """Set the colours of `entries` (a palette's 256 x BGRA) to `centres` (YCbCr rows) back in B, G, R, the last one
    repeated up to the transparent entry. A gray centre is written as a gray (see GRAY_CHROMA)."""
    import numpy as np

    back = np.linalg.inv(np.asarray(_TO_YCBCR, np.float32))
    chosen = np.clip(np.rint(centres @ back.T), 0, 255).astype(np.uint8)
    gray = (np.abs(centres[:, 1:]) < GRAY_CHROMA).all(axis=1)
    chosen[gray] = np.clip(np.rint(centres[gray, :1]), 0, 255).astype(np.uint8)
    entries[:len(chosen), :3] = chosen
    entries[len(chosen):-1, :3] = chosen[-1]
