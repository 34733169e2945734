"""What a conversion notices but survives, told to the user: one sentence each (the task's `warnings`, the
CLI's stderr)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

SHORT_OUTPUT_TOLERANCE = (0.5, 0.1, 2)
"""A run's output may fall short of the expected length by this many seconds, this share of it, or this many
output frames (the largest), before the source is reported as ending early: ffmpeg's clock stops at the last
frame's start, a boomerang's turn frame is not repeated, and edit lists cost a frame or two."""

_collected_warnings: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("transmute_warnings",
                                                                                      default=None)


@contextlib.contextmanager
def collecting_warnings() -> Iterator[list[str]]:
    """Within this block (this thread), what a conversion notices but survives is added to the yielded list."""
    found: list[str] = []
    token = _collected_warnings.set(found)
    try:
        yield found
    finally:
        _collected_warnings.reset(token)


def warn(message: str) -> None:
    """Tell the user of the conversion running in this thread something went wrong but a result was made."""
    found = _collected_warnings.get()
    if found is not None and message not in found:
        found.append(message)


def warn_if_short(written: float, expected: float, frame_rate: float | None) -> None:
    """Warn when a run wrote clearly less than expected: the source holds less than its header says
    (a truncated download or copy), and the user would otherwise get a short result without a word."""
    if written < 0:
        return
    seconds, share, frames = SHORT_OUTPUT_TOLERANCE
    frame = 1 / frame_rate if frame_rate else 0.0
    written += frame  # ffmpeg's clock stops where the last frame starts; it is shown for one frame more
    if expected - written <= max(seconds, share * expected, frames * frame):
        return
    warn(f"The result is {written:.1f} s long instead of the {expected:.1f} s expected: the video ends earlier "
         "than its header says (the file may be truncated or damaged).")
