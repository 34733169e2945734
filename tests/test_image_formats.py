"""The animated WebP and APNG formats, on real clips: what a user notices of the files they write."""

import subprocess
import threading
import time

import pytest
from click.testing import CliRunner

from tests.support.animated_images import (
    alpha_values,
    apng_rgba_frames,
    read_apng,
    read_webp,
    ssim_of_frames,
    webp_rgba_frames,
)
from tests.support.conversion import convert
from tests.support.media import ffmpeg
from transmute.cli import main
from transmute.core.errors import ConversionCancelled, ConversionTimeout, InvalidParameter, MediaError
from transmute.core.params import parse_params
from transmute.core.plugins import get_format
from transmute.plugins.apng import ApngFormat
from transmute.plugins.webp import WebpFormat


def ffprobe(path, *entries: str) -> dict[str, str]:
    done = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                           "stream=" + ",".join(entries), "-of", "default=noprint_wrappers=1", str(path)],
                          capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


@pytest.fixture(scope="module")
def translucent(tmp_path_factory):
    """160x120, 1 s, 10 fps of moving colours, every pixel half transparent (QuickTime RLE, ARGB)."""
    path = tmp_path_factory.mktemp("alpha") / "translucent.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=1,format=rgba,colorchannelmixer=aa=0.5",
           "-c:v", "qtrle", "-pix_fmt", "argb", str(path))
    return path


@pytest.fixture(scope="module")
def eight_seconds(tmp_path_factory):
    """640x480, 8 s: converting it lasts long enough for progress to be reported several times."""
    path = tmp_path_factory.mktemp("long") / "eight_seconds.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30:duration=8",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def test_both_formats_are_built_in_with_their_extension_and_type():
    webp, apng = get_format("webp"), get_format("apng")
    assert isinstance(webp, WebpFormat) and (webp.extension, webp.mime_type) == ("webp", "image/webp")
    assert isinstance(apng, ApngFormat) and (apng.extension, apng.mime_type) == ("png", "image/apng")


def test_each_format_has_its_own_options_and_refuses_another_formats():
    webp = parse_params({"format": "webp"}).to_dict()
    assert {name: webp[name] for name in ("quality", "lossless", "loop", "compression_level", "fps")} == {
        "quality": 75, "lossless": False, "loop": 0, "compression_level": 4, "fps": 15}
    assert parse_params({"format": "apng", "loop": "2"}, from_text=True).loop == 2
    with pytest.raises(InvalidParameter, match="Unknown parameter 'dither' for the webp format") as error:
        parse_params({"format": "webp", "dither": "bayer"})
    assert error.value.field == "dither"
    with pytest.raises(InvalidParameter, match="'quality' must be an integer from 0 to 100"):
        parse_params({"format": "webp", "quality": 101})
    with pytest.raises(InvalidParameter, match="Unknown parameter 'quality' for the apng format"):
        parse_params({"format": "apng", "quality": 50})


# ------------------------------------------------------------------------------------------ WebP


@pytest.fixture(scope="module")
def default_webp(clips, tmp_path_factory):
    """The 320x240, 3 s clip converted to WebP with no other option."""
    return convert(clips["video"], tmp_path_factory.mktemp("webp") / "out.webp", format="webp")


def test_the_webp_is_an_animation_of_15_fps_over_the_clip_that_loops_forever(default_webp):
    webp = read_webp(default_webp.path)
    assert (webp.width, webp.height) == (320, 240)
    assert webp.loop_count == 0
    assert webp.frame_count == pytest.approx(45, abs=1)
    assert webp.duration == pytest.approx(3.0, abs=0.07)
    assert set(webp.durations) <= {66, 67}


def test_an_opaque_source_gives_opaque_webp_frames_close_to_it(default_webp, clips, tmp_path):
    frames = webp_rgba_frames(default_webp.path, 15)
    assert len(frames) == pytest.approx(45, abs=1)
    assert all(alpha_values(frame) == {255} for frame in frames)
    assert ssim_of_frames(frames, 320, 240, clips["video"], 15, tmp_path) > 0.9


@pytest.mark.parametrize("loop", [1, 3, 65535])
def test_the_webp_loop_count_is_written_in_its_anim_chunk(clips, tmp_path, loop):
    webp = read_webp(convert(clips["small"], tmp_path / "out.webp", format="webp", loop=loop, fps=5).path)
    assert webp.loop_count == loop


def test_width_fps_span_speed_and_boomerang_shape_the_webp(clips, tmp_path):
    webp = read_webp(convert(clips["video"], tmp_path / "out.webp", format="webp", width=160, fps=10,
                             start_time=1, end_time=2, speed=0.5, boomerang=True).path)
    assert (webp.width, webp.height) == (160, 120)
    assert webp.frame_count == 2 * 20 - 1  # 1 s at half speed = 2 s of 10 fps, there and back
    assert webp.duration == pytest.approx(3.9, abs=0.11)


def test_a_lower_quality_makes_a_smaller_webp(clips, tmp_path):
    sizes = [convert(clips["video"], tmp_path / f"q{quality}.webp", format="webp", quality=quality,
                     end_time=1).path.stat().st_size for quality in (20, 75, 95)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[2] / 2


def test_a_lossless_webp_keeps_the_frames_as_the_scaler_made_them(clips, tmp_path):
    lossless = convert(clips["video"], tmp_path / "lossless.webp", format="webp", lossless=True, width=160,
                       end_time=1).path
    lossy = convert(clips["video"], tmp_path / "lossy.webp", format="webp", width=160, end_time=1).path
    frames = webp_rgba_frames(lossless, 15)
    assert len(frames) == 15
    assert ssim_of_frames(frames, 160, 120, clips["video"], 15, tmp_path) > 0.99
    assert ssim_of_frames(webp_rgba_frames(lossy, 15), 160, 120, clips["video"], 15, tmp_path) < 0.99
    assert lossless.stat().st_size > lossy.stat().st_size


@pytest.mark.parametrize("lossless", [False, True])
def test_a_translucent_source_stays_translucent_in_every_webp_frame(translucent, tmp_path, lossless):
    path = convert(translucent, tmp_path / "out.webp", format="webp", lossless=lossless, fps=10).path
    webp = read_webp(path)
    assert webp.has_alpha_flag and webp.duration == pytest.approx(1.0, abs=0.07)
    frames = webp_rgba_frames(path, 10)
    assert len(frames) == 10
    for frame in frames:  # half transparent everywhere: no frame piled over the one before
        assert min(alpha_values(frame)) >= 120 and max(alpha_values(frame)) <= 136


def test_a_grayscale_webp_has_only_gray_pixels(clips, tmp_path):
    path = convert(clips["small"], tmp_path / "out.webp", format="webp", grayscale=True, fps=5).path
    for frame in webp_rgba_frames(path, 5):
        assert max(max(frame[i: i + 3]) - min(frame[i: i + 3]) for i in range(0, len(frame), 4)) <= 3


# ------------------------------------------------------------------------------------------ APNG


@pytest.fixture(scope="module")
def default_apng(clips, tmp_path_factory):
    return convert(clips["small"], tmp_path_factory.mktemp("apng") / "out.png", format="apng")


def test_the_apng_is_an_animation_of_15_fps_over_the_clip_that_loops_forever(default_apng):
    probed = ffprobe(default_apng.path, "codec_name", "width", "height", "pix_fmt", "nb_read_frames")
    assert probed == {"codec_name": "apng", "width": "160", "height": "120", "pix_fmt": "rgb24",
                      "nb_read_frames": "15"}
    apng = read_apng(default_apng.path)
    assert apng.loop_count == 0 and apng.frame_count == 15
    assert apng.duration == pytest.approx(1.0, abs=0.05)


def test_the_apng_is_lossless(default_apng, clips, tmp_path):
    frames = apng_rgba_frames(default_apng.path)
    assert len(frames) == 15 and all(alpha_values(frame) == {255} for frame in frames)
    assert ssim_of_frames(frames, 160, 120, clips["small"], 15, tmp_path) > 0.99


@pytest.mark.parametrize("loop", [1, 4])
def test_the_apng_play_count_is_written_in_its_actl_chunk(clips, tmp_path, loop):
    assert read_apng(convert(clips["small"], tmp_path / "out.png", format="apng", loop=loop, fps=5).path
                     ).loop_count == loop


def test_a_translucent_source_stays_translucent_in_every_apng_frame(translucent, tmp_path):
    path = convert(translucent, tmp_path / "out.png", format="apng", fps=10).path
    assert ffprobe(path, "pix_fmt")["pix_fmt"] == "rgba"
    frames = apng_rgba_frames(path)
    assert len(frames) == 10
    for frame in frames:
        assert min(alpha_values(frame)) >= 126 and max(alpha_values(frame)) <= 130


def test_a_grayscale_apng_is_stored_gray(clips, tmp_path):
    path = convert(clips["small"], tmp_path / "out.png", format="apng", grayscale=True, fps=5, reverse=True).path
    assert ffprobe(path, "pix_fmt", "nb_read_frames") == {"pix_fmt": "gray", "nb_read_frames": "5"}


# ------------------------------------------------------------------------------------------ both


def assert_progress_rises_to_100(reports):
    assert reports == sorted(reports)
    assert reports[-1] == 100 and reports.count(100) == 1
    assert len({round(value) for value in reports if 0 < value < 100}) >= 3


@pytest.mark.parametrize(("suffix", "options"), [
    # At its full size and frame rate: the default 480 px at 15 fps took about 1 s, a handful of reports.
    ("webp", {"format": "webp", "keep_original_size": True, "fps": 30}),
    ("webp", {"format": "webp", "lossless": True, "width": 320}),  # the animation encoder, frames counted
    ("png", {"format": "apng", "width": 320}),
])
def test_progress_rises_steadily_and_ends_at_100(eight_seconds, tmp_path, suffix, options):
    assert_progress_rises_to_100(convert(eight_seconds, tmp_path / f"out.{suffix}", **options).progress)


@pytest.mark.parametrize(("suffix", "name"), [("webp", "webp"), ("png", "apng")])
def test_cancel_stops_the_conversion_promptly_and_leaves_no_output(eight_seconds, tmp_path, suffix, name):
    cancel = threading.Event()
    started = time.monotonic()
    with pytest.raises(ConversionCancelled):
        convert(eight_seconds, tmp_path / f"out.{suffix}", format=name, cancel=cancel, keep_original_size=True,
                on_progress=lambda percent: cancel.set() if percent > 0 else None)
    assert time.monotonic() - started < 3
    assert not (tmp_path / f"out.{suffix}").exists()


@pytest.mark.parametrize(("suffix", "name"), [("webp", "webp"), ("png", "apng")])
def test_a_conversion_past_its_timeout_is_stopped_and_says_so(eight_seconds, tmp_path, suffix, name):
    with pytest.raises(ConversionTimeout, match=r"longer than the 0\.2 s allowed.*shorter span"):
        convert(eight_seconds, tmp_path / f"out.{suffix}", format=name, timeout=0.2, keep_original_size=True,
                fps=50)
    assert not (tmp_path / f"out.{suffix}").exists()


@pytest.mark.parametrize(("suffix", "name"), [("webp", "webp"), ("png", "apng")])
def test_a_start_past_the_end_is_refused_saying_so(clips, tmp_path, suffix, name):
    with pytest.raises(MediaError, match=r"start time \(3 s\) is at or beyond the end of the video"):
        convert(clips["video"], tmp_path / f"out.{suffix}", format=name, start_time=3)
    assert not (tmp_path / f"out.{suffix}").exists()


# ------------------------------------------------------------------------------------------ CLI


def test_convert_help_lists_the_chosen_formats_options():
    webp = CliRunner().invoke(main, ["convert", "--format", "webp", "--help"], terminal_width=200).output
    for option in ("--quality", "--lossless", "--loop", "--compression-level", "--width", "--boomerang"):
        assert option in webp
    assert "--dither" not in webp
    apng = CliRunner().invoke(main, ["convert", "--format", "apng", "--help"], terminal_width=200).output
    assert "--loop" in apng and "--quality" not in apng


def test_the_cli_writes_an_apng_to_a_png_name_and_a_webp(clips, tmp_path):
    png = tmp_path / "x.png"
    done = CliRunner().invoke(main, ["convert", str(clips["small"]), "-o", str(png), "--format", "apng",
                                     "--loop", "2", "--fps", "5"])
    assert done.exit_code == 0, done.output
    assert read_apng(png).loop_count == 2 and read_apng(png).frame_count == 5
    webp = tmp_path / "x.webp"
    done = CliRunner().invoke(main, ["convert", str(clips["small"]), "-o", str(webp), "--format", "webp",
                                     "--quality", "40", "--lossless", "--fps", "5"])
    assert done.exit_code == 0, done.output
    assert read_webp(webp).frame_count == 5


def test_a_png_name_without_a_format_points_at_apng(clips, tmp_path):
    target = tmp_path / "x.png"
    done = CliRunner().invoke(main, ["convert", str(clips["small"]), "-o", str(target)])
    assert done.exit_code == 2
    assert done.output.endswith("ends in .png, but the gif format writes .gif files; name it x.gif, or pass "
                                "--format apng.\n")
    assert not target.exists()
