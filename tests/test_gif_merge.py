"""Joining GIFs block by block (transmute.media.gif_merge): the frames of each in turn, as a viewer shows them,
each with its own palette, played as often as the first says."""

from __future__ import annotations

import pytest

from tests.support.gifs import read_gif, rgb_frames
from tests.support.media import ffmpeg
from transmute.core.errors import MediaError
from transmute.media.gif_merge import merge_gif_files


def small_gif(path, source: str, frames: int, loop: int):
    """A 64x48 GIF of `frames` frames at 10 fps from the lavfi `source`, with a palette of its own."""
    ffmpeg("-t", str(frames / 10), "-f", "lavfi", "-i", f"{source}=size=64x48:rate=10", "-filter_complex",
           "split[a][b];[a]palettegen[p];[b][p]paletteuse", "-loop", str(loop), str(path))
    return path


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    return small_gif(tmp_path_factory.mktemp("merge") / "warm.gif", "testsrc2", frames=3, loop=2)


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    return small_gif(tmp_path_factory.mktemp("merge") / "cold.gif",
                     "mandelbrot", frames=5, loop=0)


def test_the_merged_gif_shows_each_gifs_frames_in_turn_with_their_delays(warm, cold, tmp_path):
    merged = tmp_path / "merged.gif"
    merge_gif_files([warm, cold], merged)
    assert rgb_frames(merged) == rgb_frames(warm) + rgb_frames(cold)
    assert read_gif(merged).delays == read_gif(warm).delays + read_gif(cold).delays


def test_the_gif_with_the_most_frames_lends_its_palette_to_the_whole_and_the_others_keep_theirs(warm, cold, tmp_path):
    merged = tmp_path / "merged.gif"
    merge_gif_files([warm, cold], merged)
    read, read_warm, read_cold = read_gif(merged), read_gif(warm), read_gif(cold)
    borrowing = read_warm.frame_count - len(read_warm.local_tables)  # warm's frames drawn with its global palette
    assert read.global_table == read_cold.global_table
    kept = read_warm.local_tables  # ffmpeg gives a first frame a table of its own
    assert read.local_tables == kept + [read_warm.global_table] * borrowing + read_cold.local_tables
    # nothing compressed again: both files' bytes, less warm's header, global palette and trailer and cold's loop
    # extension (19 bytes) and trailer, plus warm's palette once for each of its frames that borrowed it
    table_bytes = 3 * read_warm.global_table
    assert merged.stat().st_size == (warm.stat().st_size + cold.stat().st_size - 13 - table_bytes - 1 - 19 - 1
                                     + table_bytes * borrowing + 1)


def test_the_merged_gif_plays_as_often_as_the_first_says(warm, cold, tmp_path):
    merge_gif_files([warm, cold], tmp_path / "twice.gif")
    merge_gif_files([cold, warm], tmp_path / "forever.gif")
    assert read_gif(tmp_path / "twice.gif").loop_count == 2
    assert read_gif(tmp_path / "forever.gif").loop_count == 0
    assert rgb_frames(tmp_path / "forever.gif") == rgb_frames(cold) + rgb_frames(warm)


def test_a_file_that_is_not_a_gif_or_is_cut_short_is_named_in_a_media_error_and_no_file_is_left(warm, tmp_path):
    not_a_gif = tmp_path / "frames.png"
    not_a_gif.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    cut = tmp_path / "cut.gif"
    cut.write_bytes(warm.read_bytes()[:-200])
    with pytest.raises(MediaError, match=r"frames\.png is not a GIF"):
        merge_gif_files([warm, not_a_gif], tmp_path / "merged.gif")
    with pytest.raises(MediaError, match=r"cut\.gif is not a whole GIF"):
        merge_gif_files([cut, warm], tmp_path / "merged.gif")
    assert not (tmp_path / "merged.gif").exists()
