"""The sound of a video-file output: the source's audio over the plan's span, at the plan's speed."""

from __future__ import annotations

from transmute.core.formats import ConversionJob
from transmute.media.video import Plan, source_input

ATEMPO_RANGE = (0.5, 2.0)
"""The tempo one atempo filter changes without skipping samples (ffmpeg's atempo documentation: past 2 it
drops samples instead of blending them; before ffmpeg 4.3 it refused anything outside this range)."""


def tempo_factors(speed: float) -> list[float]:
    """atempo factors, each within ATEMPO_RANGE, whose product is `speed` (0.25 -> [0.5, 0.5], 3 -> [2, 1.5])."""
    low, high = ATEMPO_RANGE
    factors = []
    while speed > high or speed < low:
        step = high if speed > high else low
        factors.append(step)
        speed /= step
    if speed != 1.0:
        factors.append(speed)
    return factors


def keeps_audio(job: ConversionJob, wanted: bool) -> bool:
    """Whether the output has sound: asked for, the source has some, and the frames play forward once (reverse
    and boomerang drop it: played backwards, speech and music are noise)."""
    params = job.params
    return wanted and job.media.has_audio and not (params.reverse or params.boomerang)


def source_audio(job: ConversionJob, the_plan: Plan):
    """The source's first audio stream over the plan's span (the same input as the video, so the same seek),
    its tempo changed by `speed` (pitch kept) so it lasts as long as the frames: an ffmpeg-python stream."""
    audio = source_input(job, the_plan)["a:0"]
    for factor in tempo_factors(job.params.speed):
        audio = audio.filter("atempo", f"{factor:.6g}")
    # From 0, as the frames (setpts in source_video), so a seek that lands a little early stays in sync.
    return audio.filter("asetpts", "PTS-STARTPTS")
