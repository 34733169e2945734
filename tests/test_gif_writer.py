"""transmute's own GIF writer (transmute.media.gif_writer): each frame redraws only the pixels whose colour
changes, whatever palette it has, and the palette most frames have is the global one; what a viewer shows is
every frame as given."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.gifs import read_gif, rgb_frames
from transmute.media.gif_writer import TRANSPARENT_INDEX, GifWriter

WIDTH, HEIGHT = 8, 6


def palette_of(colours: list[tuple[int, int, int]]) -> bytes:
    """A 256-entry bgra palette laid out as transmute's: the colours, the last repeated, entry 255 transparent."""
    entries = np.zeros((256, 4), np.uint8)
    entries[:, :3] = [colours[min(index, len(colours) - 1)][::-1] for index in range(256)]
    entries[:255, 3] = 255
    return entries.tobytes()


RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
WARM = palette_of([RED, GREEN, WHITE])
COLD = palette_of([BLUE, WHITE, RED])  # red and white again, at other entries


def shown(indices, palette: bytes) -> np.ndarray:
    """The rgb24 picture `indices` show with `palette`."""
    entries = np.frombuffer(palette, np.uint8).reshape(256, 4)[:, 2::-1]
    return entries[np.asarray(indices).ravel()].reshape(HEIGHT, WIDTH, 3)


def pal8(indices, palette: bytes) -> bytes:
    return np.asarray(indices, np.uint8).tobytes() + palette


def decoded(path) -> list[np.ndarray]:
    return [np.frombuffer(frame, np.uint8).reshape(HEIGHT, WIDTH, 3) for frame in rgb_frames(path)]


def test_a_frame_with_another_palette_redraws_only_the_pixels_whose_colour_changes(tmp_path):
    first = np.zeros((HEIGHT, WIDTH), np.uint8)  # red all over
    second = np.full((HEIGHT, WIDTH), 2, np.uint8)  # red again, at COLD's entry 2...
    second[2:4, 3:5] = 0  # ...but for a blue patch
    with GifWriter(tmp_path / "out.gif", WIDTH, HEIGHT, fps=10, loop=0) as writer:
        writer.add(pal8(first, WARM))
        writer.add(pal8(second, COLD))
    gif = read_gif(tmp_path / "out.gif")
    assert gif.frame_count == 2 and gif.local_table_frames == [1]  # the first frame's palette is the global one
    assert gif.rectangles == [(0, 0, WIDTH, HEIGHT), (3, 2, 2, 2)]
    frames = decoded(tmp_path / "out.gif")
    assert (frames[0] == shown(first, WARM)).all() and (frames[1] == shown(second, COLD)).all()


def test_a_frame_that_changes_nothing_keeps_its_time(tmp_path):
    still = np.zeros((HEIGHT, WIDTH), np.uint8)
    with GifWriter(tmp_path / "out.gif", WIDTH, HEIGHT, fps=15, loop=3) as writer:
        for _ in range(15):
            writer.add(pal8(still, WARM))
    gif = read_gif(tmp_path / "out.gif")
    # each frame at its time rounded to the centisecond, as ffmpeg's muxer does: a second in all
    assert gif.frame_count == 15 and gif.duration == 1.0 and set(gif.delays) == {6, 7}
    assert gif.loop_count == 3 and gif.rectangles[1:] == [(0, 0, 1, 1)] * 14
    assert all((frame == shown(still, WARM)).all() for frame in decoded(tmp_path / "out.gif"))


def test_a_gif_played_once_has_no_loop_extension(tmp_path):
    with GifWriter(tmp_path / "out.gif", WIDTH, HEIGHT, fps=10, loop=-1) as writer:
        writer.add(pal8(np.zeros((HEIGHT, WIDTH), np.uint8), WARM))
    assert read_gif(tmp_path / "out.gif").loop_count is None


def test_a_pixel_a_source_makes_transparent_shows_through_after_an_opaque_one(tmp_path):
    opaque = np.zeros((HEIGHT, WIDTH), np.uint8)
    holed = opaque.copy()
    holed[1, 1] = TRANSPARENT_INDEX
    with GifWriter(tmp_path / "out.gif", WIDTH, HEIGHT, fps=10, loop=0, own_transparency=True) as writer:
        writer.add(pal8(opaque, WARM))
        writer.add(pal8(holed, WARM))
    frames = [np.frombuffer(frame, np.uint8).reshape(HEIGHT, WIDTH, 4)
              for frame in rgb_frames(tmp_path / "out.gif", pix_fmt="rgba")]
    assert frames[0][1, 1, 3] == 255 and frames[1][1, 1, 3] == 0
    assert (frames[1][0, 0] == (*RED, 255)).all()


def test_a_writer_left_by_an_error_leaves_no_file(tmp_path):
    with pytest.raises(ValueError), GifWriter(tmp_path / "out.gif", WIDTH, HEIGHT, fps=10, loop=0) as writer:
        writer.add(pal8(np.zeros((HEIGHT, WIDTH), np.uint8), WARM))
        raise ValueError("the mapping broke")
    assert not (tmp_path / "out.gif").exists()


def test_the_palette_most_frames_have_is_the_global_one(tmp_path):
    with GifWriter(tmp_path / "out.gif", WIDTH, HEIGHT, fps=10, loop=0) as writer:
        writer.add(pal8(np.zeros((HEIGHT, WIDTH), np.uint8), WARM))
        for colour in (0, 1, 0):
            writer.add(pal8(np.full((HEIGHT, WIDTH), colour, np.uint8), COLD))
    gif = read_gif(tmp_path / "out.gif")
    assert gif.local_table_frames == [0] and gif.frame_count == 4
    assert [frame[0, 0].tolist() for frame in decoded(tmp_path / "out.gif")] == [list(RED), list(BLUE),
                                                                                  list(WHITE), list(BLUE)]
