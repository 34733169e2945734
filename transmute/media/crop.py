"""Cropping: a region `x:y:w:h` in the source's display pixels, or an aspect ratio `w:h` cut from the centre.

The region is in display pixels (sample aspect ratio and rotation applied, the picture a player shows), so a
client never needs to know how the file stores it; the filter maps it onto the decoded frame in proportion.
"""

from __future__ import annotations

from dataclasses import dataclass

from transmute.core.errors import MediaError

CROP_PATTERN = r"^(\d{1,5}:\d{1,5}:[1-9]\d{0,4}:[1-9]\d{0,4}|[1-9]\d{0,3}(\.\d{1,3})?:[1-9]\d{0,3}(\.\d{1,3})?)$"
"""What the `crop` option accepts: four integers x:y:w:h (w and h from 1), or two numbers w:h from 1 (an aspect
ratio); the schema says it all, so a value it lets through is one crop_region can use."""
CROP_ACCEPTS = ("a region x:y:w:h in source pixels (e.g. 0:0:320:180: left, top, width, height) or an aspect "
                "ratio w:h cut from the centre (e.g. 1:1, 9:16, 16:9)")
"""The same in words, as `transmute convert --help`, `/api/formats/` and a 400 say it."""


@dataclass(frozen=True)
class Region:
    """A rectangle in display pixels."""

    x: int
    y: int
    width: int
    height: int


def crop_region(text: str, display_width: int, display_height: int) -> Region:
    """The region `text` (a valid `crop` value) selects in a picture of `display_width`x`display_height`.

    A region that reaches past the picture is refused (MediaError), not clamped: a clamped crop would quietly
    give a different framing and size than asked for.
    """
    parts = text.split(":")
    if len(parts) == 4:
        x, y, width, height = (int(part) for part in parts)
        if x + width > display_width or y + height > display_height:
            raise MediaError(f"The crop region {text} (x:y:w:h) reaches past the picture, which is "
                             f"{display_width}x{display_height} pixels; choose x + w <= {display_width} and "
                             f"y + h <= {display_height}, or an aspect ratio such as 1:1.")
        return Region(x, y, width, height)
    ratio = float(parts[0]) / float(parts[1])
    if display_width / display_height > ratio:  # wider than asked: full height, the middle of the width
        width, height = max(1, min(display_width, round(display_height * ratio))), display_height
    else:
        width, height = display_width, max(1, min(display_height, round(display_width / ratio)))
    return Region((display_width - width) // 2, (display_height - height) // 2, width, height)


def crop_filter(video, region: Region, display_width: int, display_height: int):
    """`video` cropped to `region`, given in display pixels of a `display_width`x`display_height` picture.

    The decoded frame may store the picture with non-square pixels, so the region is mapped in proportion
    (iw / display width); that also holds for a frame larger than the probe saw."""
    return video.filter("crop", w=f"iw*{region.width}/{display_width}", h=f"ih*{region.height}/{display_height}",
                        x=f"iw*{region.x}/{display_width}", y=f"ih*{region.y}/{display_height}")

