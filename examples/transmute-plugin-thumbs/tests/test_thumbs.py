"""The thumbs format's own tests, run against the installed plugin (`pip install -e .`, then `pytest`): real clips
made with ffmpeg's lavfi sources, converted the way transmute converts them."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from transmute.core.errors import InvalidParameter, MediaError
from transmute.core.params import parse_params
from transmute.media.conversion import convert_file
from transmute.settings import LimitsConfig


def ffmpeg(*args: str) -> bytes:
    return subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", *args], check=True,
                          capture_output=True).stdout


@pytest.fixture
def ramp(tmp_path: Path) -> Path:
    """64x48, 2 s at 10 fps, black brightening steadily to white: a frame's brightness tells its time."""
    path = tmp_path / "ramp.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x48:r=10:d=2,format=gray,geq=lum='min(250,T*120)'",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def convert(source: Path, output: Path, **values) -> list[float]:
    """Convert as transmute does (options validated by parse_params, then convert_file); the progress reported."""
    progress: list[float] = []
    work_dir = output.parent / "work"
    work_dir.mkdir(exist_ok=True)
    convert_file(source, output, parse_params({"format": "thumbs", **values}),
                 limits=LimitsConfig().for_conversion(), work_dir=work_dir, progress=progress.append)
    return progress


def test_a_strip_of_count_thumbnails_of_the_given_height_in_time_order(ramp: Path, tmp_path: Path) -> None:
    strip = tmp_path / "strip.png"
    progress = convert(ramp, strip, count=4, height=48)

    shown = ffmpeg("-i", str(strip), "-f", "null", "-").decode()  # decodes: a whole, valid picture
    assert shown == ""
    size = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                           "stream=codec_name,width,height", "-of", "csv=p=0", str(strip)],
                          check=True, capture_output=True, text=True).stdout.strip()
    assert size == "png,256,48"  # 4 thumbnails 64x48 (the clip's proportions), side by side
    gray = ffmpeg("-i", str(strip), "-f", "rawvideo", "-pix_fmt", "gray", "-")
    tiles = [sum(gray[row * 256 + column] for row in range(48) for column in range(tile * 64, tile * 64 + 64))
             / (64 * 48) for tile in range(4)]
    steps = [later - earlier for earlier, later in itertools.pairwise(tiles)]
    assert all(step > 40 for step in steps), tiles  # left to right in time, evenly spaced
    assert max(steps) - min(steps) < 15, tiles
    assert progress == sorted(progress) and progress[-1] == 100


def test_options_are_checked_before_any_work() -> None:
    assert parse_params({"format": "thumbs"}).to_dict() == {"format": "thumbs", "count": 5, "height": 90}
    with pytest.raises(InvalidParameter, match=r"'count' must be an integer from 2 to 20; got 50"):
        parse_params({"format": "thumbs", "count": 50})
    with pytest.raises(InvalidParameter, match=r"Unknown parameter 'fps' for the thumbs format"):
        parse_params({"format": "thumbs", "fps": 10})


def test_a_file_that_is_not_a_video_fails_with_a_sentence_and_leaves_no_output(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("This is a shopping list, not a video.\n")
    with pytest.raises(MediaError, match="not a video"):
        convert(notes, tmp_path / "strip.png")
    assert not (tmp_path / "strip.png").exists()
