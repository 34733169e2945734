"""The built-in `sprite` format: a contact sheet of columns x rows evenly spaced frames, as video players use it
for previews while scrubbing, with each tile's time and place in the task's metadata.

The clip is cut in columns * rows equal intervals; tile k shows the frame a player shows in the middle of
interval k, at (k + 0.5) * duration / tiles. One ffmpeg run: timestamps moved half an interval earlier, `fps`
at one frame per interval (round=up: each output slot takes the last frame starting at or before its time, the
frame shown then; start_time=0: slots start at the first tile's time, whichever frame came before it), scale
to the tile size, `tile` into one picture, one JPEG. No input seeking: a seek would start at the first frame
after the tile's time, not the one shown at it (and the half interval it skips is short).

JPEG rather than PNG: a sprite is a grid of small photographic frames that a player downloads before it
can show a single preview; JPEG makes it several times smaller than PNG at no visible cost at tile size,
and it is what players' thumbnail tracks (WebVTT sprites, storyboards) use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import ffmpeg
from msgspec import Meta

from transmute.core.errors import ConversionCancelled, MediaError
from transmute.core.formats import ConversionJob, OutputFormat
from transmute.core.hookspecs import hookimpl
from transmute.core.options import FormatOptions
from transmute.media.cleanup import output_removed_on_failure
from transmute.media.filters import decoder_options, deinterlaced
from transmute.media.geometry import output_size
from transmute.media.inputs import local_input
from transmute.media.limits import check_decode, input_options, max_pixels
from transmute.media.run import run_ffmpeg
from transmute.plugins.still import jpeg_qscale

JPEG_QUALITY = 85
"""Quality of the sprite's JPEG (1-100, as the jpg format's `quality`): tiles are small, artefacts invisible."""
JPEG_MAX_SIDE = 65_500
"""A JPEG's width and height are 16-bit numbers (65535 at most)."""


class SpriteOptions(FormatOptions, kw_only=True):
    """The options of a sprite: its grid, and the width of one tile."""

    columns: Annotated[int, Meta(ge=1, le=20, description="Tiles across the sheet.")] = 5
    rows: Annotated[int, Meta(ge=1, le=20, description="Tiles down the sheet.")] = 5
    tile_width: Annotated[int, Meta(ge=16, le=640, description="Width of one tile in pixels; its height keeps "
                                                               "the video's aspect ratio.")] = 160


def tile_layout(duration: float, columns: int, rows: int, tile_width: int, tile_height: int) -> dict[str, Any]:
    """The sheet as the task's metadata tells it: the grid, the tile size, and for each tile (row by row) the
    time of its frame, the interval it previews and its top-left corner in the picture (seconds to the ms)."""
    count = columns * rows
    interval = duration / count
    tiles = [{"time": round((index + 0.5) * interval, 3), "start": round(index * interval, 3),
              "end": round((index + 1) * interval, 3), "x": index % columns * tile_width,
              "y": index // columns * tile_height} for index in range(count)]
    return {"columns": columns, "rows": rows, "tile_width": tile_width, "tile_height": tile_height,
            "interval": round(interval, 3), "tiles": tiles}


class SpriteFormat(OutputFormat):
    name = "sprite"
    extension = "jpg"
    mime_type = "image/jpeg"
    description = "A contact sheet of evenly spaced frames (a JPEG), for previews while scrubbing; the tile " \
                  "times are in the task's metadata."
    options = SpriteOptions

    def convert(self, job: ConversionJob) -> None:
        if job.cancel.is_set():
            raise ConversionCancelled("The conversion was cancelled.")
        params, media = job.params, job.media
        tile_width, tile_height = output_size(media, width=params.tile_width, keep_original_size=False)
        sheet_width, sheet_height = params.columns * tile_width, params.rows * tile_height
        if max(sheet_width, sheet_height) > JPEG_MAX_SIDE or sheet_width * sheet_height > max_pixels(job.limits):
            raise MediaError(f"The sprite would be {sheet_width}x{sheet_height} pixels, larger than a picture "
                             f"transmute makes ({JPEG_MAX_SIDE} pixels a side, {max_pixels(job.limits)} in all); "
                             "choose fewer columns or rows, or a smaller tile_width.")
        count = params.columns * params.rows
        interval = media.duration / count
        check_decode(media, media.duration, job.limits)
        source = ffmpeg.input(local_input(job.input_path), **input_options(job.limits), **decoder_options(media))
        sheet = (
            deinterlaced(source.video, media)
            .filter("setpts", f"PTS-{interval / 2:.6f}/TB")
            .filter("fps", fps=f"{count}/{media.duration:.6f}", start_time=0, round="up")
            .filter("scale", tile_width, tile_height, flags="lanczos")
            .filter("setsar", "1")
            .filter("tile", layout=f"{params.columns}x{params.rows}")
            .output(local_input(job.output_path), vframes=1, format="image2", update=1, vcodec="mjpeg",
                    **{"q:v": jpeg_qscale(JPEG_QUALITY)})
            .overwrite_output()
        )
        # The sheet is written once, at the end: progress creeps over the decode of the whole clip.
        estimate = 0.2 + media.duration * (media.fps or 30) * media.width * media.height / 200e6
        with output_removed_on_failure(job, "try a shorter video"):
            run_ffmpeg(sheet, expected_duration=0, limits=job.limits, progress=job.progress, cancel=job.cancel,
                       timeout=job.timeout, stall_estimate=estimate, stall_share=0.95, warn_if_short=False)
            if not Path(job.output_path).is_file() or Path(job.output_path).stat().st_size == 0:
                raise MediaError("ffmpeg wrote no sprite; the video may hold no frame ffmpeg can decode.")
        job.metadata.update(tile_layout(media.duration, params.columns, params.rows, tile_width, tile_height))


@hookimpl
def transmute_output_formats() -> list[OutputFormat]:
    return [SpriteFormat()]
