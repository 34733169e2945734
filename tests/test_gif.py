import threading
from pathlib import Path

import pytest

from tests.support.conversion import convert
from tests.support.gifs import brightness, rgb_frames, ssim_to_source
from tests.support.media import ffmpeg
from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.plugins import get_format, plugin_manager
from transmute.media import relay as relay_module
from transmute.media.inputs import ALLOWED_DEMUXERS
from transmute.plugins import gif as gif_plugin
from transmute.plugins.gif import DITHERS, GifFormat


@pytest.fixture(scope="module")
def default_gif(clips, tmp_path_factory):
    """The 320x240, 3 s test clip converted with no parameters at all."""
    return convert(clips["video"], tmp_path_factory.mktemp("default") / "out.gif")


def test_the_gif_plugin_is_found_through_its_entry_point():
    assert "gif" in dict(plugin_manager().list_name_plugin())
    assert isinstance(get_format("gif"), GifFormat)


def test_the_result_is_a_gif89a_that_loops_forever(default_gif):
    data = default_gif.path.read_bytes()
    assert data[:6] == b"GIF89a" and data[-1:] == b"\x3b"
    assert b"NETSCAPE2.0" in data
    assert default_gif.gif.loop_count == 0


def test_without_a_width_a_source_narrower_than_480_keeps_its_size(default_gif):
    assert (default_gif.gif.width, default_gif.gif.height) == (320, 240)


def test_the_default_is_15_frames_per_second_over_the_whole_clip(default_gif):
    gif = default_gif.gif
    assert gif.frame_count == pytest.approx(45, abs=1)
    assert gif.duration == pytest.approx(3.0, abs=0.1)
    assert set(gif.delays) <= {6, 7}


def test_a_width_scales_the_picture_and_keeps_its_aspect_ratio(clips, tmp_path):
    gif = convert(clips["video"], tmp_path / "out.gif", width=160, end_time=0.5).gif
    assert (gif.width, gif.height) == (160, 120)


def test_keep_original_size_ignores_the_width(clips, tmp_path):
    gif = convert(clips["video"], tmp_path / "out.gif", width=100, keep_original_size=True, end_time=0.5).gif
    assert (gif.width, gif.height) == (320, 240)


@pytest.mark.parametrize(("fps", "delay"), [(10, 10), (25, 4), (50, 2)])
def test_each_frame_is_shown_for_one_period_of_the_requested_fps(clips, tmp_path, fps, delay):
    gif = convert(clips["video"], tmp_path / "out.gif", fps=fps, end_time=1, width=64).gif
    assert gif.frame_count == pytest.approx(fps, abs=1)
    assert set(gif.delays) == {delay}


def test_start_and_end_times_trim_the_clip(clips, tmp_path):
    gif = convert(clips["video"], tmp_path / "out.gif", fps=10, start_time=1, end_time=2.5, width=64).gif
    assert gif.frame_count == pytest.approx(15, abs=1)
    assert gif.duration == pytest.approx(1.5, abs=0.11)


def test_an_end_time_past_the_end_of_the_video_is_clamped(clips, tmp_path):
    gif = convert(clips["video"], tmp_path / "out.gif", fps=10, start_time=2, end_time=60, width=64).gif
    assert gif.duration == pytest.approx(1.0, abs=0.11)


def test_a_start_time_at_or_past_the_end_of_the_video_is_refused_saying_so(clips, tmp_path):
    with pytest.raises(MediaError, match=r"start time \(3 s\) is at or beyond the end of the video"):
        convert(clips["video"], tmp_path / "out.gif", start_time=3)
    assert not (tmp_path / "out.gif").exists()


@pytest.mark.parametrize("speed", [2.0, 0.5])
def test_speed_divides_the_length_of_the_span(clips, tmp_path, speed):
    gif = convert(clips["video"], tmp_path / "out.gif", fps=10, end_time=2, speed=speed, width=64).gif
    assert gif.duration == pytest.approx(2 / speed, abs=0.11)
    assert set(gif.delays) == {10}


def test_reverse_plays_the_clip_backwards(clips, tmp_path):
    forward = [brightness(f) for f in rgb_frames(convert(clips["ramp"], tmp_path / "f.gif", fps=10).path)]
    backward = [brightness(f) for f in rgb_frames(
        convert(clips["ramp"], tmp_path / "b.gif", fps=10, reverse=True).path)]
    assert len(forward) == len(backward) == pytest.approx(20, abs=1)
    assert forward[0] < 20 and forward[-1] > 200
    assert backward == pytest.approx(forward[::-1], abs=3)


def test_boomerang_plays_forward_then_backward_without_repeating_the_turn(clips, tmp_path):
    plain = rgb_frames(convert(clips["ramp"], tmp_path / "f.gif", fps=10).path)
    boomerang = rgb_frames(convert(clips["ramp"], tmp_path / "b.gif", fps=10, boomerang=True).path)
    assert len(boomerang) == 2 * len(plain) - 1
    levels = [brightness(frame) for frame in boomerang]
    turn = levels.index(max(levels))
    assert turn == len(plain) - 1
    assert levels[: turn + 1] == sorted(levels[: turn + 1])
    assert levels[turn:] == sorted(levels[turn:], reverse=True)
    assert levels[-1] == pytest.approx(levels[0], abs=3)


@pytest.mark.parametrize("quality", [{}, {"high_quality": True}, {"quality": "low", "dither": "floyd_steinberg"}],
                         ids=["default", "high_quality", "low_dithered"])
def test_grayscale_output_has_only_gray_pixels(tmp_path, quality):
    # a palette's gray made of gray pixels' mean, as (208, 208, 207) where each channel rounds on its own
    source = tmp_path / "bars.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3", "-pix_fmt", "yuv420p", str(source))
    converted = convert(source, tmp_path / "out.gif", grayscale=True, fps=10, **quality)
    colour = rgb_frames(convert(source, tmp_path / "colour.gif", fps=5, **quality).path)[0]
    assert any(colour[i] != colour[i + 1] for i in range(0, len(colour), 3))
    for frame in rgb_frames(converted.path):
        assert all(frame[i] == frame[i + 1] == frame[i + 2] for i in range(0, len(frame), 3))


@pytest.mark.parametrize("dither", DITHERS)
def test_every_dither_mode_converts_to_a_gif_of_the_asked_size_and_rate(clips, tmp_path, dither):
    gif = convert(clips["small"], tmp_path / "out.gif", dither=dither, fps=5).gif
    assert gif.frame_count == 5 and gif.width == 160


def colours(path) -> int:
    return len({frame[i: i + 3] for frame in rgb_frames(path) for i in range(0, len(frame), 3)})


def test_higher_quality_uses_more_colours(clips, tmp_path):
    used = {quality: colours(convert(clips["small"], tmp_path / f"{quality}.gif", quality=quality, fps=5).path)
            for quality in ("low", "medium", "high")}
    best = colours(convert(clips["small"], tmp_path / "hq.gif", high_quality=True, fps=5).path)
    assert used["low"] <= 64 < used["medium"] <= 128 < used["high"] <= 256
    assert best > 128


@pytest.fixture(scope="module")
def eight_seconds(tmp_path_factory):
    """640x480, 8 s: long enough that converting it lasts about two seconds even on a fast machine,
    so progress has time to be reported several times (the 3 s clip converts in under half a second)."""
    path = tmp_path_factory.mktemp("long") / "eight_seconds.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30:duration=8",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


@pytest.mark.parametrize("width", [160, None])
def test_high_quality_is_closer_to_the_source_than_the_high_level(clips, tmp_path, width):
    options = {"width": width} if width else {}
    high = convert(clips["video"], tmp_path / "high.gif", quality="high", **options).path
    best = convert(clips["video"], tmp_path / "best.gif", high_quality=True, **options).path
    size = width or 320
    assert ssim_to_source(best, clips["video"], size) > ssim_to_source(high, clips["video"], size) + 0.05


def test_progress_rises_steadily_and_ends_at_100(eight_seconds, tmp_path):
    assert_progress_rises_to_100(convert(eight_seconds, tmp_path / "out.gif", reverse=True).progress)


def test_cancel_stops_the_conversion_before_its_end_and_leaves_no_output(clips, tmp_path):
    cancel = threading.Event()
    reports: list[float] = []

    def cancel_at_first_report(percent: float) -> None:
        reports.append(percent)
        cancel.set()

    with pytest.raises(ConversionCancelled):
        convert(clips["video"], tmp_path / "out.gif", cancel=cancel, keep_original_size=True, fps=50,
                high_quality=True, on_progress=cancel_at_first_report)
    assert reports and max(reports) < 100, reports  # stopped mid-way, not run to its end
    assert not (tmp_path / "out.gif").exists()


def test_a_conversion_past_its_timeout_is_stopped_and_says_so(clips, tmp_path):
    with pytest.raises(ConversionTimeout, match=r"longer than the 0\.2 s allowed"):
        convert(clips["video"], tmp_path / "out.gif", timeout=0.2, keep_original_size=True, fps=50,
                high_quality=True, boomerang=True)
    assert not (tmp_path / "out.gif").exists()


# ------------------------------------------------------------------------------------------ one pass or two


@pytest.fixture
def ffmpeg_runs(monkeypatch):
    """The real run_ffmpeg, counted: one list entry per ffmpeg run of the GIF plugin (the two runs of a relay
    start at once, in either order)."""
    runs: list[list[str]] = []
    real = gif_plugin.run_ffmpeg

    def counted(stream, **kwargs):
        runs.append(gif_plugin.ffmpeg.compile(stream, cmd="ffmpeg"))
        return real(stream, **kwargs)

    monkeypatch.setattr(gif_plugin, "run_ffmpeg", counted)
    monkeypatch.setattr(relay_module, "run_ffmpeg", counted)
    return runs


def assert_progress_rises_to_100(reports):
    assert reports == sorted(reports)
    assert reports[-1] == 100 and reports.count(100) == 1
    assert len({round(value) for value in reports if 0 < value < 100}) >= 3


def decodes_source(command: list[str], source: Path) -> bool:
    return any(arg == f"file:{source}" for arg in command)


@pytest.mark.parametrize("options", [{}, {"boomerang": True, "quality": "low"}])
def test_a_level_decodes_once_keeping_the_frames_on_disk_and_twice_when_they_do_not_fit_giving_the_same_gif(
        eight_seconds, tmp_path, monkeypatch, ffmpeg_runs, options):
    # a level: the frames written to disk as the source is decoded, transmute's palette made from them, and
    # paletteuse's bayer dither mapping them onto it as they are read back (no palettegen, no frames in memory)
    one = convert(eight_seconds, tmp_path / "one.gif", **options)
    assert len(ffmpeg_runs) == 2
    decoding, mapping = ffmpeg_runs
    assert decodes_source(decoding, eight_seconds) and not decodes_source(mapping, eight_seconds)
    source = decoding.index("-i")
    input_options = dict(zip(decoding[1:source:2], decoding[2:source:2], strict=True))
    assert input_options["-protocol_whitelist"] == "file"
    assert input_options["-format_whitelist"] == ",".join(ALLOWED_DEMUXERS)
    assert input_options["-max_pixels"] == str(8192 * 8192)  # the decoder's cap: the largest source accepted
    assert decoding[decoding.index("-f") + 1] == "rawvideo" and "palettegen" not in " ".join(decoding)
    assert "paletteuse" in " ".join(mapping) and "dither=bayer" in " ".join(mapping)
    assert all(mapping[i + 1].startswith("file:") for i, arg in enumerate(mapping) if arg == "-i")
    assert mapping[-2].startswith("file:") and mapping[mapping.index("-loop") + 1] == "0"
    assert_progress_rises_to_100(one.progress)

    monkeypatch.setattr(gif_plugin, "FRAMES_ON_DISK_MB", 0.0)
    two = convert(eight_seconds, tmp_path / "two.gif", **options)
    assert len(ffmpeg_runs) == 4 and all(decodes_source(command, eight_seconds) for command in ffmpeg_runs[2:])
    assert_progress_rises_to_100(two.progress)

    # The same sample of frames, so the same palette: the very same GIF either way.
    assert one.path.read_bytes() == two.path.read_bytes()
    assert one.gif.version == b"GIF89a" and one.gif.loop_count == 0


def test_high_quality_decodes_once_keeping_the_frames_on_disk_and_twice_when_they_do_not_fit_giving_the_same_gif(
        eight_seconds, tmp_path, monkeypatch, ffmpeg_runs):
    # high_quality: one run writes the frames to disk (transmute makes the palette from them and maps them onto it)
    # and their thumbnails to Python (the scenes); transmute writes the GIF itself as it maps the frames.
    one = convert(eight_seconds, tmp_path / "one.gif", high_quality=True)
    assert len(ffmpeg_runs) == 1 and decodes_source(ffmpeg_runs[0], eight_seconds)
    decoding = ffmpeg_runs[0]
    assert "palettegen" not in " ".join(decoding) and decoding[decoding.index("-f") + 1] == "rawvideo"
    assert any(arg.startswith("pipe:") for arg in decoding)  # the thumbnails the scenes are found in
    assert not any("paletteuse" in " ".join(command) for command in ffmpeg_runs)  # transmute maps the colours
    assert one.gif.version == b"GIF89a" and one.gif.loop_count == 0 and one.gif.frame_count == 120
    assert_progress_rises_to_100(one.progress)

    monkeypatch.setattr(gif_plugin, "FRAMES_ON_DISK_MB", 0.0)
    two = convert(eight_seconds, tmp_path / "two.gif", high_quality=True)
    assert len(ffmpeg_runs) == 3 and all(decodes_source(command, eight_seconds) for command in ffmpeg_runs[1:])
    assert ffmpeg_runs[2][-1].startswith("pipe:")  # decoded again, for transmute to map and write
    assert all(arg.startswith(("file:", "pipe:")) for cmd in ffmpeg_runs
               for arg in (cmd[cmd.index("-i") + 1], cmd[-2] if cmd[-1] == "-y" else cmd[-1]))
    assert_progress_rises_to_100(two.progress)

    # The palette is made from the same sample of frames either way: the very same GIF.
    assert one.path.read_bytes() == two.path.read_bytes()
    assert not any(tmp_path.glob("**/*.bgra"))


def test_high_quality_decodes_again_when_the_disk_has_no_room_for_the_frames(eight_seconds, tmp_path, monkeypatch,
                                                                              ffmpeg_runs):
    class FullDisk:
        free = 50 * 1024 * 1024  # less than twice the 79 MiB of frames

    monkeypatch.setattr(gif_plugin.shutil, "disk_usage", lambda path: FullDisk)
    converted = convert(eight_seconds, tmp_path / "decoded.gif", high_quality=True)
    assert len(ffmpeg_runs) == 2 and all(decodes_source(command, eight_seconds) for command in ffmpeg_runs)
    assert converted.gif.frame_count == 120

    # frames few enough for the palette to be sampled from all of them (9 MiB) are all written anyway, even
    # where the disk keeps less than as much again free: read back, not decoded again
    FullDisk.free = 10 * 1024 * 1024
    small = convert(eight_seconds, tmp_path / "small.gif", high_quality=True, width=160)
    assert len(ffmpeg_runs) == 3 and decodes_source(ffmpeg_runs[2], eight_seconds)
    assert small.gif.frame_count == 120


@pytest.mark.parametrize("options", [{"reverse": True}, {"boomerang": True, "fps": 5},
                                     {"dither": "floyd_steinberg", "fps": 5}])
def test_high_quality_played_backwards_or_dithered_is_the_same_gif_whether_frames_are_kept_or_decoded_again(
        eight_seconds, tmp_path, monkeypatch, options):
    # Kept frames are put in order (and mapped) by transmute; frames decoded again by ffmpeg's reverse filter
    # (and an error-diffusion dither is paletteuse's either way).
    kept = convert(eight_seconds, tmp_path / "kept.gif", high_quality=True, **options)
    monkeypatch.setattr(gif_plugin, "FRAMES_ON_DISK_MB", 0.0)
    decoded = convert(eight_seconds, tmp_path / "decoded.gif", high_quality=True, **options)
    assert kept.path.read_bytes() == decoded.path.read_bytes()
    forward = round(8 * options.get("fps", 15))
    assert kept.gif.frame_count == (2 * forward - 1 if options.get("boomerang") else forward)
