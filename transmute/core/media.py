"""Media helpers over ffmpeg-python: probe a file, run ffmpeg with progress, timeout and cancel.

(Skeleton: MediaInfo is final; the functions below are to be implemented.)
"""

from __future__ import annotations

import msgspec


class MediaInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a probe learned of a media file."""

    duration: float
    """Seconds."""
    width: int
    height: int
    fps: float
    frame_count: int | None = None
    container: str = ""
    video_codec: str = ""
    has_audio: bool = False
