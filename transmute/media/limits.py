"""The checks that keep one conversion within its ConversionLimits, before ffmpeg runs and while it decodes."""

from __future__ import annotations

import math

from transmute.core.errors import MediaError
from transmute.core.formats import ConversionLimits
from transmute.core.models import MediaInfo
from transmute.media.inputs import INPUT_OPTIONS

FFMPEG_OWN_MB = 768
"""Address space ffmpeg maps besides the frames reverse and boomerang buffer (decoder, threads, scaler, GIF
encoder): measured 560-800 MB under the 1536 MB default ceiling, 720p and 1080p, one and two passes. A buffer
must fit in TRANSMUTE_MAX_CONVERSION_MEMORY_MB minus this, or the run would fail midway."""


def max_pixels(limits: ConversionLimits) -> int:
    """The most pixels one picture may have: the largest source the limits accept."""
    return limits.max_source_width * limits.max_source_height


def input_options(limits: ConversionLimits) -> dict[str, str]:
    """INPUT_OPTIONS plus `max_pixels`, the decoder's cap on one picture (the largest source the limits accept):
    a frame larger than the probe saw, further in the file, is refused by the decoder instead of allocated.
    ffmpeg-python: `ffmpeg.input(path, **input_options(limits))`."""
    return {**INPUT_OPTIONS, "max_pixels": str(max_pixels(limits))}


def _duration_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:g} s"


def check_source(media: MediaInfo, limits: ConversionLimits) -> None:
    """MediaError when a source is larger or longer than the limits allow."""
    if media.width > limits.max_source_width or media.height > limits.max_source_height:
        raise MediaError(f"The video is {media.width}x{media.height} pixels; transmute accepts sources up to "
                         f"{limits.max_source_width}x{limits.max_source_height} (TRANSMUTE_MAX_SOURCE_WIDTH, "
                         "TRANSMUTE_MAX_SOURCE_HEIGHT).")
    if media.duration > limits.max_source_duration:
        raise MediaError(f"The video is {_duration_text(media.duration)} long; transmute accepts sources up to "
                         f"{_duration_text(limits.max_source_duration)} (TRANSMUTE_MAX_SOURCE_DURATION).")


def check_output(*, frames: int, width: int, height: int, buffered_frames: int = 0,
                 limits: ConversionLimits) -> None:
    """MediaError, before ffmpeg runs, when a conversion would write too many frames, or buffer too many.

    `frames`: frames the output will have. `buffered_frames`: frames of `width`x`height` a filter must hold
    in memory at once (reverse holds the whole span), counted at 4 bytes a pixel.
    """
    if frames > limits.max_output_frames:
        raise MediaError(f"The conversion would write {frames} frames, more than the {limits.max_output_frames} "
                         "allowed (TRANSMUTE_MAX_OUTPUT_FRAMES); choose a shorter span, a lower fps or a "
                         "higher speed.")
    needed_mb = buffered_frames * width * height * 4 / (1024 * 1024)
    room_mb = limits.max_conversion_memory_mb - FFMPEG_OWN_MB
    if buffered_frames and limits.max_conversion_memory_mb > 0 and room_mb < needed_mb <= limits.max_reverse_mb:
        raise MediaError(f"Reverse and boomerang hold every frame in memory: {buffered_frames} frames of "
                         f"{width}x{height} need about {needed_mb:.0f} MB, more than the {max(room_mb, 0):g} MB "
                         f"ffmpeg has for them within its {limits.max_conversion_memory_mb:g} MB "
                         "(TRANSMUTE_MAX_CONVERSION_MEMORY_MB); choose a shorter span, a smaller width or a "
                         "lower fps.")
    if needed_mb > limits.max_reverse_mb:
        raise MediaError(f"Reverse and boomerang hold every frame in memory: {buffered_frames} frames of "
                         f"{width}x{height} need about {needed_mb:.0f} MB, more than the {limits.max_reverse_mb:g} "
                         "MB allowed (TRANSMUTE_MAX_REVERSE_MB); choose a shorter span, a smaller width or a "
                         "lower fps.")


def check_decode(media: MediaInfo, span: float, limits: ConversionLimits) -> None:
    """MediaError, before ffmpeg runs, when decoding `span` seconds of the source is more pixels than
    TRANSMUTE_MAX_DECODE_GIGAPIXELS allow (width * height * frames, frames from the probe's rate)."""
    rate = media.fps or (media.frame_count / media.duration if media.frame_count and media.duration else 0) or 60.0
    frames = max(1, math.ceil(rate * span))
    gigapixels = media.width * media.height * frames / 1e9
    if gigapixels > limits.max_decode_gigapixels:
        raise MediaError(f"The conversion would decode {frames} frames of {media.width}x{media.height} "
                         f"({gigapixels:.3g} gigapixels), more than the {limits.max_decode_gigapixels:g} allowed "
                         "(TRANSMUTE_MAX_DECODE_GIGAPIXELS); choose a shorter span.")


def frames_too_large(size: str, limits: ConversionLimits) -> str:
    """The message for a file whose decoder met a picture past `max_pixels` (`size`: ffmpeg's "WxH")."""
    return (f"The video has frames of {size} pixels, larger than the {limits.max_source_width}x"
            f"{limits.max_source_height} (or {max_pixels(limits)} pixels) transmute accepts "
            "(TRANSMUTE_MAX_SOURCE_WIDTH, TRANSMUTE_MAX_SOURCE_HEIGHT); its picture size changes inside the "
            "file.")


def out_of_memory(limits: ConversionLimits) -> str:
    """The message for a run stopped by the memory ceiling."""
    return (f"The conversion needed more than {limits.max_conversion_memory_mb:g} MB of memory "
            "(TRANSMUTE_MAX_CONVERSION_MEMORY_MB) and was stopped; try a smaller width, a lower fps or a "
            "shorter span.")
