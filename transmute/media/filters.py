"""The parts of an ffmpeg-python graph that depend on the source: its decoder, deinterlacing, grayscale."""

from __future__ import annotations

from typing import Any

from transmute.core.models import MediaInfo

_ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}
"""ffmpeg's native VP8/VP9 decoders ignore the alpha channel WebM stores beside the picture; libvpx reads it."""


def decoder_options(media: MediaInfo) -> dict[str, str]:
    """Input options that decode `media` faithfully: libvpx for VP8/VP9 streams that carry alpha."""
    decoder = _ALPHA_DECODERS.get(media.video_codec) if media.has_alpha else None
    return {"c:v": decoder} if decoder else {}


def deinterlaced(video: Any, media: MediaInfo) -> Any:
    """The ffmpeg-python stream `video`, deinterlaced (bwdif) when the source is interlaced.

    Two fields a field-time apart in one frame comb every moving edge; bwdif rebuilds whole frames, and
    must come before any scaling mixes the fields' lines. One frame out per frame in (the rate is set later).
    """
    return video.filter("bwdif", mode="send_frame", deint="all") if media.interlaced else video


def to_gray(video: Any) -> Any:
    """The ffmpeg-python stream `video` in gray, its transparency kept (ya8: gray plus the alpha plane)."""
    return video.filter("format", "ya8")
