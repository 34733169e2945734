"""Search a ladder of encoder settings for the best result within a byte budget, in at most four encodes.

The ladder is a position t from 0 (the settings asked for) to `floor` (the smallest settings allowed); the
caller's `model(t)` predicts how much smaller (in natural log of the size) position t makes the result, and
grows with t. The search:

1. encodes t = 0; under the budget, that is the result;
2. encodes t = floor; over the budget, nothing fits: SizeNotReached, with that (smallest) size;
3. twice, encodes the t where the size, interpolated on the model's scale between the nearest encode over
   the budget and the nearest under it, would be AIM of the budget; each encode narrows that bracket.

The result is the encode under the budget closest to t = 0, the best that fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transmute.core.errors import MediaError

MAX_ENCODES = 4
AIM = 0.95
"""The size aimed at, as a share of the budget: a little under it, since the model is a guess."""
SPANS = ((0.0, 40.0), (40.0, 55.0), (55.0, 78.0), (78.0, 100.0))
"""The progress bar's share of each encode, in order: the first is the largest (the settings asked for), the
floor's the smallest, the two in between take the rest."""


@dataclass(frozen=True)
class Attempt:
    """One encode: where on the ladder, the file, its size in bytes."""

    t: float
    path: Path
    size: int


class SizeNotReached(MediaError):
    """Even the floor of the ladder is larger than the budget."""

    def __init__(self, smallest: Attempt, budget: int) -> None:
        super().__init__(f"The smallest result ({smallest.size} bytes) is larger than the {budget} bytes allowed.")
        self.smallest = smallest
        self.budget = budget


def search_size(encode: Callable[[float, Path, tuple[float, float]], int], *, model: Callable[[float], float],
                floor: float, budget: int, work_dir: Path) -> Attempt:
    """The best encode of at most `budget` bytes (see the module). `encode(t, path, progress_span)` writes
    position t to `path` and returns its size; encodes no longer needed are removed."""
    spans = iter(SPANS)

    def attempt(t: float) -> Attempt:
        path = Path(work_dir) / f"size-search-{len(tried)}.gif"
        made = Attempt(t, path, encode(t, path, next(spans)))
        tried.append(made)
        return made

    tried: list[Attempt] = []
    too_big = attempt(0.0)
    if too_big.size <= budget:
        return too_big
    fits = attempt(floor)
    if fits.size > budget:
        too_big.path.unlink(missing_ok=True)
        raise SizeNotReached(fits, budget)
    while len(tried) < MAX_ENCODES:
        t = _interpolate(too_big, fits, model, budget * AIM)
        if t is None:
            break
        made = attempt(t)
        if made.size <= budget:
            fits.path.unlink(missing_ok=True)
            fits = made
        else:
            too_big.path.unlink(missing_ok=True)
            too_big = made
    too_big.path.unlink(missing_ok=True)
    return fits


def _interpolate(too_big: Attempt, fits: Attempt, model: Callable[[float], float], aim: float) -> float | None:
    """The t between the two encodes where log size, linear on the model's scale, reaches `aim`; None when no
    position in between would change the settings (the model is flat there)."""
    low, high = model(too_big.t), model(fits.t)
    if high <= low:
        return None
    log_big, log_fits = math.log(too_big.size), math.log(max(fits.size, 1))
    share = (log_big - math.log(aim)) / (log_big - log_fits) if log_big > log_fits else 0.5
    wanted = low + min(max(share, 0.0), 1.0) * (high - low)
    # The first t whose model reaches `wanted` (bisection: the model only grows with t).
    left, right = too_big.t, fits.t
    for _ in range(40):
        middle = (left + right) / 2
        if model(middle) >= wanted:
            right = middle
        else:
            left = middle
    if model(right) <= low or right >= fits.t or model(right) >= high:
        return None
    return right
