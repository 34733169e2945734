"""The output's picture size, in square pixels, from the source's display size."""

from __future__ import annotations

from transmute.core.models import MediaInfo
from transmute.core.options import DEFAULT_WIDTH


def output_size(media: MediaInfo, *, width: int | None, keep_original_size: bool,
                picture: tuple[int, int] | None = None) -> tuple[int, int]:
    """The output size in square pixels, from the source's display size (sample aspect ratio and rotation
    applied), or from `picture` (the display-pixel size of a crop of it): `keep_original_size` keeps it,
    `width` sets the width, else DEFAULT_WIDTH but never wider than the picture; the height follows the
    picture's aspect ratio."""
    display_width, display_height = picture or (media.display_width, media.display_height)
    if keep_original_size:
        return display_width, display_height
    if width is None:
        width = min(DEFAULT_WIDTH, display_width)
    return width, max(1, round(display_height * width / display_width))
