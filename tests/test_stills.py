"""The `jpg`, `png`, `sprite` and `mp3` formats: real outputs of lavfi clips, read back with ffprobe and ffmpeg,
directly and through the embedded API (status metadata, downloads, failures, 400s)."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from tests.support.embedded import embedded_client
from tests.support.media import ffmpeg
from tests.support.tasks import upload, wait_finished
from transmute.cli import main
from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.params import parse_params
from transmute.media.conversion import convert_file
from transmute.plugins.mp3 import NO_AUDIO
from transmute.settings import LimitsConfig

LIMITS = LimitsConfig().for_conversion()


def converted(source: Path, output: Path, **values: Any) -> tuple[dict[str, Any], list[float]]:
    """Convert as the CLI and the worker do; the plugin's metadata and the progress reported."""
    reports: list[float] = []
    work_dir = output.parent / (output.name + ".work")
    work_dir.mkdir(exist_ok=True)
    cancel, timeout = values.pop("cancel", None), values.pop("timeout", None)
    converted = convert_file(source, output, parse_params(values), limits=LIMITS, work_dir=work_dir,
                             progress=reports.append, cancel=cancel, timeout=timeout)
    return converted.metadata, reports


def probed(path: Path) -> dict[str, Any]:
    """ffprobe's first stream and format of a file."""
    shown = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                           check=True, capture_output=True, text=True).stdout
    data = json.loads(shown)
    return {**data["streams"][0], "format": data["format"]}


def pixels(path: Path, pix_fmt: str = "gray", vf: str = "") -> bytes:
    """The picture (the first frame) of a file decoded to raw `pix_fmt`."""
    filters = ["-vf", vf] if vf else []
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), *filters, "-frames:v", "1", "-f", "rawvideo",
                           "-pix_fmt", pix_fmt, "-"], check=True, capture_output=True).stdout


def mean(data: bytes) -> float:
    return sum(data) / len(data)


# ----------------------------------------------------------------------------------------------- jpg / png


@pytest.mark.parametrize(("at", "shown"), [(0.0, 0.0), (1.0, 1.0), (1.05, 1.0), (1.55, 1.5), (1.99, 1.9)])
def test_a_png_at_a_time_is_the_frame_a_player_shows_then(clips, tmp_path, at, shown):
    # ramp: 10 fps, each frame's brightness is min(250, t * 120) of its own time t.
    target = tmp_path / "still.png"
    metadata, reports = converted(clips["ramp"], target, format="png", time=at)
    stream = probed(target)
    assert (stream["codec_name"], stream["pix_fmt"], stream["width"], stream["height"]) == ("png", "rgb24", 64, 48)
    assert mean(pixels(target)) == pytest.approx(shown * 120, abs=1.5)
    assert metadata == {"time": at}
    assert reports[-1] == 100 and reports == sorted(reports)


def test_a_jpg_at_a_time_shows_that_frame_at_the_width_asked(clips, tmp_path):
    target = tmp_path / "still.jpg"
    converted(clips["ramp"], target, format="jpg", time=1.0, width=32)
    stream = probed(target)
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("mjpeg", 32, 24)
    assert stream["format"]["format_name"] in ("image2", "jpeg_pipe")
    assert mean(pixels(target)) == pytest.approx(120, abs=4)  # the neighbouring frames are 12 away


def test_without_a_width_a_still_has_the_sources_full_size(clips, tmp_path):
    target = tmp_path / "still.jpg"
    converted(clips["video"], target, format="jpg", time=1)
    assert (probed(target)["width"], probed(target)["height"]) == (320, 240)


def test_jpg_quality_trades_size_for_fidelity(clips, tmp_path):
    low, high = tmp_path / "low.jpg", tmp_path / "high.jpg"
    converted(clips["video"], low, format="jpg", time=1, quality=10)
    converted(clips["video"], high, format="jpg", time=1, quality=100)
    assert low.stat().st_size * 3 < high.stat().st_size


def test_without_a_time_the_still_is_a_real_frame_of_the_first_seconds(clips, tmp_path):
    target = tmp_path / "poster.png"
    metadata, _ = converted(clips["video"], target, format="png")
    chosen = pixels(target, "rgb24")
    # Every frame of the source at the same size: the still is exactly one of them, the one at its time.
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["video"]), "-vf", "scale=flags=lanczos",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    frames = [raw[i: i + len(chosen)] for i in range(0, len(raw), len(chosen))]
    differences = [sum(abs(a - b) for a, b in zip(chosen[::97], frame[::97], strict=True)) / len(chosen[::97])
                   for frame in frames]
    best = min(range(len(frames)), key=differences.__getitem__)
    assert differences[best] < 1.0
    assert metadata["time"] == pytest.approx(best / 30, abs=0.001)


def test_a_png_keeps_the_sources_transparency(tmp_path):
    source = tmp_path / "alpha.mov"
    ffmpeg("-f", "lavfi", "-i", "color=c=red@0.5:s=64x48:r=10:d=1,format=rgba", "-c:v", "png", str(source))
    target = tmp_path / "still.png"
    converted(source, target, format="png", time=0.5)
    assert probed(target)["pix_fmt"] == "rgba"
    alpha = pixels(target, "rgba")[3::4]
    assert mean(alpha) == pytest.approx(128, abs=2)


def test_a_time_past_the_end_fails_with_the_videos_length(clips, tmp_path):
    target = tmp_path / "still.jpg"
    with pytest.raises(MediaError, match=r"The time \(2.5 s\) is at or beyond the end of the video \(2 s\); "
                                         r"choose a time before 2 s\."):
        converted(clips["ramp"], target, format="jpg", time=2.5)
    assert not target.exists()


def test_a_cancelled_still_leaves_nothing(clips, tmp_path):
    target, cancel = tmp_path / "still.png", threading.Event()
    cancel.set()
    with pytest.raises(ConversionCancelled):
        converted(clips["video"], target, format="png", cancel=cancel)
    assert not target.exists()


# ------------------------------------------------------------------------------------------------ sprite


def test_a_sprite_is_columns_by_rows_tiles_of_the_frames_in_the_middle_of_each_interval(clips, tmp_path):
    target = tmp_path / "sheet.jpg"
    metadata, reports = converted(clips["ramp"], target, format="sprite", columns=4, rows=2, tile_width=32)
    stream = probed(target)
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("mjpeg", 4 * 32, 2 * 24)
    assert reports[-1] == 100
    gray = pixels(target)
    for tile in metadata["tiles"]:
        inner = [gray[y * 128 + x] for y in range(tile["y"] + 4, tile["y"] + 20)
                 for x in range(tile["x"] + 4, tile["x"] + 28)]
        # ramp at 10 fps: the frame shown at t started at floor(t * 10) / 10 and is that time * 120 bright.
        assert mean(bytes(inner)) == pytest.approx(int(tile["time"] * 10) / 10 * 120, abs=4), tile
    assert [tile["time"] for tile in metadata["tiles"]] == [0.125, 0.375, 0.625, 0.875, 1.125, 1.375, 1.625, 1.875]
    assert {key: metadata[key] for key in ("columns", "rows", "tile_width", "tile_height", "interval")} == {
        "columns": 4, "rows": 2, "tile_width": 32, "tile_height": 24, "interval": 0.25}
    assert metadata["tiles"][6] == {"time": 1.625, "start": 1.5, "end": 1.75, "x": 64, "y": 24}


def test_a_sprite_past_the_largest_picture_is_refused_before_ffmpeg_runs(tmp_path):
    tall = tmp_path / "tall.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=16x1024:r=5:d=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", str(tall))
    with pytest.raises(MediaError, match=r"The sprite would be 640x819200 pixels.*choose fewer columns or rows"):
        converted(tall, tmp_path / "sheet.jpg", format="sprite", rows=20, columns=1, tile_width=640)


def test_a_sprite_out_of_time_is_stopped_and_removed(tmp_path):
    # A sprite decodes the whole clip: a minute of 640x360 takes far longer than the 0.3 s allowed.
    long_clip = tmp_path / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=60", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(long_clip))
    target = tmp_path / "sheet.jpg"
    with pytest.raises(ConversionTimeout, match="try a shorter video"):
        converted(long_clip, target, format="sprite", timeout=0.3)
    assert not target.exists()


def test_convert_help_for_a_sprite_lists_its_grid_options():
    shown = CliRunner().invoke(main, ["convert", "--format", "sprite", "--help"], terminal_width=200).output
    for option in ("--columns", "--rows", "--tile-width"):
        assert option in shown
    assert "--fps" not in shown and "--width" not in shown


# --------------------------------------------------------------------------------------------------- mp3


def test_an_mp3_is_the_sound_of_the_span_at_the_bit_rate_asked(clips, tmp_path):
    target = tmp_path / "sound.mp3"
    _, reports = converted(clips["video"], target, format="mp3", start_time=0.5, end_time=2.5, bitrate=128)
    stream = probed(target)
    assert (stream["codec_type"], stream["codec_name"], stream["format"]["format_name"]) == ("audio", "mp3", "mp3")
    assert int(stream["bit_rate"]) == 128_000
    assert float(stream["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    assert reports[-1] == 100 and reports == sorted(reports)


def test_an_mp3_by_default_is_the_whole_track_at_192_kbits(clips, tmp_path):
    target = tmp_path / "sound.mp3"
    converted(clips["video"], target, format="mp3")
    stream = probed(target)
    assert int(stream["bit_rate"]) == 192_000
    assert float(stream["format"]["duration"]) == pytest.approx(3.0, abs=0.1)


def test_an_mp3_of_a_silent_video_fails_and_says_why(clips, tmp_path):
    with pytest.raises(MediaError, match=NO_AUDIO):
        converted(clips["ramp"], tmp_path / "sound.mp3", format="mp3")


def test_transmute_convert_writes_an_mp3_and_sums_it_up(clips, tmp_path):
    target = tmp_path / "sound.mp3"
    done = CliRunner().invoke(main, ["convert", str(clips["video"]), "-o", str(target), "-f", "mp3",
                                     "--bitrate", "96", "--end-time", "1"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"transmute: wrote {target} (") and " KB)" in done.output
    assert int(probed(target)["bit_rate"]) == 96_000


# ----------------------------------------------------------------------------------------------- the API


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with embedded_client(tmp_path_factory.mktemp("stills-api")) as client:
        yield client


def test_fps_or_an_unknown_option_of_a_still_is_a_400_naming_it(api, clips):
    for body, field in (({"format": "jpg", "fps": 10}, "fps"), ({"format": "png", "boomerang": True}, "boomerang"),
                        ({"format": "mp3", "width": 200}, "width"), ({"format": "sprite", "columns": 21}, "columns"),
                        ({"format": "jpg", "quality": 0}, "quality")):
        with clips["video"].open("rb") as handle:
            response = api.post("/api/tasks/create/", files={"file": ("clip.mp4", handle, "video/mp4")},
                                data={name: str(value) for name, value in body.items()})
        assert response.status_code == 400, (body, response.text)
        assert response.json()["details"] == {"field": field}
        assert repr(field) in response.json()["error"]
        if field == "fps":
            assert "known parameters: format, time, width, quality" in response.json()["error"]


def test_a_sprite_through_the_api_tells_its_tile_times_and_downloads_as_a_jpeg(api, clips):
    created = upload(api, clips["video"], filename="clip.mp4", format="sprite", columns=3, rows=2, tile_width=64)
    status = wait_finished(api, created["task_id"])
    assert status["status"] == "done", status
    told = status["metadata"]["format_metadata"]
    assert (told["columns"], told["rows"], told["tile_width"], told["tile_height"]) == (3, 2, 64, 48)
    assert [tile["time"] for tile in told["tiles"]] == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75]
    result = api.get(f"/api/tasks/{created['task_id']}/result/").json()["result"]
    assert result["format_metadata"] == told
    assert result["filename"].endswith(".jpg")
    download = api.get(result["download_url"])
    assert download.headers["content-type"] == "image/jpeg"
    assert download.content[:3] == b"\xff\xd8\xff"
    assert api.get(result["output_url"]).headers["content-type"] == "image/jpeg"


def test_stills_and_mp3s_download_with_their_type_and_extension_even_zipped(api, clips):
    tasks = {name: upload(api, clips["video"], format=name, **extra)["task_id"]
             for name, extra in (("jpg", {"time": 1}), ("png", {}), ("mp3", {"end_time": 1}))}
    for name, task_id in tasks.items():
        assert wait_finished(api, task_id)["status"] == "done"
        response = api.get(f"/api/tasks/{task_id}/download/")
        assert response.headers["content-type"] == {"jpg": "image/jpeg", "png": "image/png",
                                                    "mp3": "audio/mpeg"}[name]
        assert f'filename="task_{task_id}_result.{name}"' in response.headers["content-disposition"]
    status = api.get(f"/api/tasks/{tasks['png']}/status/").json()
    assert 0 <= status["metadata"]["format_metadata"]["time"] < 3
    archive = api.get("/api/tasks/batch-download/", params={"task_ids": ",".join(tasks.values())})
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert sorted(Path(name).suffix for name in zipped.namelist()) == [".jpg", ".mp3", ".png"]


def test_an_mp3_of_a_silent_video_is_a_failed_task_with_that_message(api, clips):
    created = upload(api, clips["ramp"], format="mp3")
    status = wait_finished(api, created["task_id"])
    assert status["status"] == "failed"
    assert status["error_message"] == NO_AUDIO
    assert status["metadata"]["format_metadata"] == {}
