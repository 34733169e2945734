"""The GIF controls a user sets and then sees in the file: how often it plays, how many colours it has, which
part of the picture it shows, how much lossy compression shrinks it, and that it fits a size."""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading

import pytest

from tests.support.conversion import convert
from tests.support.gifs import rgb_frames, ssim_to_source
from tests.support.media import X264, ffmpeg
from transmute.core.errors import ConversionCancelled, MediaError
from transmute.media import scenes
from transmute.plugins import gif as gif_plugin


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """160x120, 1 s at 10 fps: the left half red, the right half blue."""
    path = tmp_path_factory.mktemp("halves") / "halves.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=red:s=160x120:r=10:d=1,drawbox=x=80:y=0:w=80:h=120:color=blue:t=fill",
           *X264, str(path))
    return path


@pytest.fixture(scope="module")
def wide_pixels(tmp_path_factory):
    """Stored 80x120 with pixels twice as wide as tall (shown 160x120): the left half red, the right blue."""
    path = tmp_path_factory.mktemp("wide") / "wide_pixels.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=red:s=80x120:r=10:d=1,drawbox=x=40:y=0:w=40:h=120:color=blue:t=fill,"
           "setsar=2", *X264, str(path))
    return path


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """160x120, 2 s at 10 fps of a test pattern with grain: a picture GIF compresses badly."""
    path = tmp_path_factory.mktemp("busy") / "busy.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2,noise=alls=12:allf=t", *X264, str(path))
    return path


@pytest.fixture(scope="module")
def busy_gif(busy, tmp_path_factory):
    """The busy clip converted with the defaults: the size the other results are compared with."""
    return convert(busy, tmp_path_factory.mktemp("busy-gif") / "plain.gif")


def netscape_block(data: bytes) -> bytes | None:
    """The NETSCAPE2.0 application extension's data sub-block (03 01 count-lo count-hi), None without one."""
    start = data.find(b"\x21\xff\x0bNETSCAPE2.0")
    return None if start < 0 else data[start + 14: start + 18]


def colours_used(path) -> int:
    return len({frame[i: i + 3] for frame in rgb_frames(path) for i in range(0, len(frame), 3)})


# -- loop -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("loop", "stored"), [(0, 0), (2, 1), (3, 2), (65535, 65534)])
def test_loop_is_the_number_of_plays_stored_as_repeats_in_the_netscape_block(clips, tmp_path, loop, stored):
    converted = convert(clips["small"], tmp_path / "out.gif", loop=loop, fps=5, width=64)
    assert netscape_block(converted.path.read_bytes()) == b"\x03\x01" + stored.to_bytes(2, "little")
    assert converted.gif.loop_count == stored


def test_loop_1_plays_once_the_gif_has_no_netscape_block(clips, tmp_path):
    converted = convert(clips["small"], tmp_path / "out.gif", loop=1, fps=5, width=64)
    assert b"NETSCAPE2.0" not in converted.path.read_bytes()
    assert converted.gif.loop_count is None and converted.gif.frame_count == 5


def test_the_loop_count_survives_gifsicle(clips, tmp_path):
    converted = convert(clips["small"], tmp_path / "out.gif", loop=4, lossy=40, colors=3, fps=5, width=64)
    assert converted.gif.loop_count == 3


# -- colors -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("colors", "table"), [(2, 4), (3, 4), (16, 16), (100, 128)])
def test_colors_caps_the_colours_seen_and_sizes_the_colour_tables(clips, tmp_path, colors, table):
    """`colors` counts palette entries; the colour tables are the power of two that holds them (2 and 3 colours
    plus the transparent entry: 4)."""
    converted = convert(clips["small"], tmp_path / "out.gif", colors=colors, fps=5)
    assert 2 <= colours_used(converted.path) <= colors
    gif = converted.gif
    assert max([gif.global_table, *gif.local_tables]) == table


def test_colors_overrides_the_quality_palette(clips, tmp_path):
    high = colours_used(convert(clips["small"], tmp_path / "h.gif", quality="high", fps=5).path)
    capped = colours_used(convert(clips["small"], tmp_path / "c.gif", quality="high", colors=32, fps=5).path)
    assert capped <= 32 < 128 < high


# -- crop -------------------------------------------------------------------------------------------------

def channel_means(path) -> tuple[float, float, float]:
    frames = rgb_frames(path)
    pixels = sum(len(frame) // 3 for frame in frames)
    return tuple(sum(sum(frame[c::3]) for frame in frames) / pixels for c in range(3))


def test_a_crop_region_keeps_that_part_at_its_own_size(halves, tmp_path):
    converted = convert(halves, tmp_path / "out.gif", crop="0:0:80:120")
    assert (converted.gif.width, converted.gif.height) == (80, 120)
    red, _, blue = channel_means(converted.path)
    assert red > 200 and blue < 30  # only the red half


def test_the_width_scales_the_crop_in_its_proportions(halves, tmp_path):
    gif = convert(halves, tmp_path / "out.gif", crop="100:20:60:30", width=40).gif
    assert (gif.width, gif.height) == (40, 20)
    red, _, blue = channel_means(tmp_path / "out.gif")
    assert blue > 200 and red < 30  # only the blue half


@pytest.mark.parametrize(("aspect", "size"), [("1:1", (120, 120)), ("9:16", (68, 120)), ("16:9", (160, 90)),
                                              ("2.39:1", (160, 67))])
def test_an_aspect_crop_cuts_the_centre_to_that_shape(halves, tmp_path, aspect, size):
    converted = convert(halves, tmp_path / "out.gif", crop=aspect)
    assert (converted.gif.width, converted.gif.height) == size


def test_a_centred_square_of_the_halves_is_half_red_half_blue(halves, tmp_path):
    red, _, blue = channel_means(convert(halves, tmp_path / "out.gif", crop="1:1").path)
    assert red == pytest.approx(blue, abs=15)


def test_crop_regions_are_in_display_pixels_for_non_square_pixels(wide_pixels, tmp_path):
    converted = convert(wide_pixels, tmp_path / "out.gif", crop="0:0:80:120")
    assert (converted.gif.width, converted.gif.height) == (80, 120)
    red, _, blue = channel_means(converted.path)
    assert red > 200 and blue < 30


def test_a_crop_region_past_the_picture_fails_naming_the_picture_size(halves, tmp_path):
    with pytest.raises(MediaError, match=r"crop region 100:0:100:50 .* past the picture, which is 160x120"):
        convert(halves, tmp_path / "out.gif", crop="100:0:100:50")
    assert not (tmp_path / "out.gif").exists()


# -- lossy ------------------------------------------------------------------------------------------------

def test_lossy_makes_the_same_gif_smaller(busy, busy_gif, tmp_path):
    lossy = convert(busy, tmp_path / "lossy.gif", lossy=80)
    plain = busy_gif.gif
    assert lossy.path.stat().st_size < 0.9 * busy_gif.path.stat().st_size
    assert (lossy.gif.width, lossy.gif.height) == (plain.width, plain.height)
    # gifsicle folds a frame that changes nothing (the 10 fps source's repeats at 15 fps) into the one before
    assert lossy.gif.duration == pytest.approx(plain.duration, abs=0.011)
    assert lossy.progress[-1] == 100.0 and lossy.progress == sorted(lossy.progress)


@pytest.fixture(scope="module")
def still_background(tmp_path_factory):
    """320x180, 2 s at 10 fps: a red square crossing a grainy test picture that stays still (a screen recording
    or a fixed camera): most pixels of each frame are the previous frame's, which the GIF leaves transparent."""
    path = tmp_path_factory.mktemp("still") / "still.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=0.1,noise=alls=25:allf=u,"
           "loop=loop=19:size=1:start=0[bg];color=red:s=40x40:r=10[box];[bg][box]overlay=x=20+100*t:y=70:shortest=1",
           "-c:v", "libx264", "-crf", "4", "-pix_fmt", "yuv420p", str(path))
    return path


def test_lossy_keeps_a_still_background_transparent_and_makes_the_gif_smaller(still_background, tmp_path):
    plain = convert(still_background, tmp_path / "plain.gif", width=320)
    lossy = convert(still_background, tmp_path / "lossy.gif", width=320, lossy=30)
    assert lossy.path.stat().st_size < 0.75 * plain.path.stat().st_size
    assert lossy.gif.duration == pytest.approx(plain.gif.duration, abs=0.011)


@pytest.fixture
def without_gifsicle(tmp_path, monkeypatch):
    """A PATH with ffmpeg and ffprobe but no gifsicle."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("ffmpeg", "ffprobe"):
        os.symlink(next(os.path.join(d, program) for d in os.environ["PATH"].split(os.pathsep)
                        if os.access(os.path.join(d, program), os.X_OK)), bin_dir / program)
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.parametrize("values", [{"lossy": 30}, {"colors": 2}])
def test_without_gifsicle_lossy_and_tiny_palettes_fail_naming_the_package(clips, tmp_path, without_gifsicle,
                                                                          values):
    name, value = next(iter(values.items()))
    with pytest.raises(MediaError, match=rf"{name}={value} needs gifsicle.*apt-get install gifsicle"):
        convert(clips["small"], tmp_path / "out.gif", **values)
    assert not (tmp_path / "out.gif").exists()


def test_without_gifsicle_other_palette_sizes_still_work(clips, tmp_path, without_gifsicle):
    assert colours_used(convert(clips["small"], tmp_path / "out.gif", colors=16, fps=5).path) <= 16


def test_a_cancel_before_gifsicle_leaves_no_output(clips, tmp_path):
    cancel = threading.Event()

    def on_progress(percent: float) -> None:
        if percent >= 80:  # ffmpeg's share is done; gifsicle is next
            cancel.set()

    with pytest.raises(ConversionCancelled):
        convert(clips["small"], tmp_path / "out.gif", lossy=50, cancel=cancel, on_progress=on_progress)
    assert not (tmp_path / "out.gif").exists()


# -- max_size_kb ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("share", [0.6, 0.25, 0.08])
def test_max_size_kb_gives_a_gif_under_the_size_not_far_under(busy, busy_gif, tmp_path, share):
    target_kb = max(1, int(busy_gif.path.stat().st_size / 1024 * share))
    converted = convert(busy, tmp_path / "out.gif", max_size_kb=target_kb)
    size = converted.path.stat().st_size
    assert 0.4 * target_kb * 1024 <= size <= target_kb * 1024
    assert converted.gif.frame_count >= 5
    assert converted.progress == sorted(converted.progress) and converted.progress[-1] == 100.0
    assert not list((tmp_path / "out.work").glob("*.gif"))  # the other encodes are gone


def test_a_gif_already_under_max_size_kb_is_the_gif_asked_for(busy, busy_gif, tmp_path):
    roomy = busy_gif.path.stat().st_size // 1024 + 10
    converted = convert(busy, tmp_path / "out.gif", max_size_kb=roomy)
    assert converted.path.read_bytes() == busy_gif.path.read_bytes()


def test_an_impossible_max_size_kb_fails_naming_the_smallest_size_reached(busy, tmp_path):
    with pytest.raises(MediaError, match=r"max_size_kb=1 KB: the smallest it reached was (\d+\.\d) KB") as caught:
        convert(busy, tmp_path / "out.gif", max_size_kb=1)
    assert float(caught.value.args[0].split("reached was ")[1].split(" KB")[0]) > 1
    assert not (tmp_path / "out.gif").exists()


# -- high_quality -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def camera(tmp_path_factory):
    """320x180, 2 s at 30 fps: a moving gradient, an object crossing it, lens blur and sensor grain."""
    path = tmp_path_factory.mktemp("camera") / "camera.mp4"
    ffmpeg("-f", "lavfi", "-i", "gradients=size=320x180:rate=30:seed=7:speed=0.02:n=4:duration=2[bg];"
           "color=c=#f1faee:size=60x40:rate=30[box];[bg][box]overlay=x=30+50*t:y=70+10*sin(3*t):shortest=1,"
           "gblur=sigma=1.5,noise=alls=9:allf=t+u:all_seed=7", "-c:v", "libx264", "-crf", "4", "-pix_fmt", "yuv420p",
           str(path))
    return path


@pytest.fixture(scope="module")
def camera_hq(camera, tmp_path_factory):
    """The camera clip converted with high_quality (gifsicle installed)."""
    return convert(camera, tmp_path_factory.mktemp("camera-hq") / "hq.gif", high_quality=True, width=320)


def test_high_quality_through_yuv444_shows_the_picture_scaled_straight_to_rgb_would(camera, camera_hq, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.setattr(gif_plugin, "HIGH_QUALITY", dataclasses.replace(gif_plugin.HIGH_QUALITY, via_yuv444=False))
    straight = convert(camera, tmp_path / "straight.gif", high_quality=True, width=320).path
    assert ssim_to_source(camera_hq.path, camera, 320) == pytest.approx(ssim_to_source(straight, camera, 320),
                                                                        abs=0.003)
    # about the same size too: 0.94-1.06x on real footage (docs/gif-quality.md, "Flickers")
    assert 0.9 * straight.stat().st_size <= camera_hq.path.stat().st_size <= 1.05 * straight.stat().st_size


def test_high_quality_needs_no_gifsicle(camera, camera_hq, tmp_path, without_gifsicle):
    without = convert(camera, tmp_path / "without.gif", high_quality=True, width=320)
    assert without.path.read_bytes() == camera_hq.path.read_bytes()
    assert without.progress[-1] == 100.0


def test_high_quality_makes_a_palette_closer_to_the_source_than_palettegen_at_about_the_same_size(
        clips, tmp_path, monkeypatch):
    # testsrc2: flat colour bars, a gradient and text, where palettegen's median cut places colours worst;
    # no pixels held, as in ffmpeg's own palettegen and paletteuse (no dither) at the same scaling
    monkeypatch.setattr(gif_plugin, "HIGH_QUALITY", dataclasses.replace(gif_plugin.HIGH_QUALITY, still_tolerance=0))
    own = convert(clips["video"], tmp_path / "own.gif", high_quality=True, fps=15)
    palettegen = tmp_path / "palettegen.gif"
    ffmpeg("-i", str(clips["video"]), "-filter_complex",
           f"fps=15,scale=flags={gif_plugin.HIGH_QUALITY.scale_flags},split[a][b];[a]palettegen[p];"
           "[b][p]paletteuse=dither=none", str(palettegen))
    assert ssim_to_source(own.path, clips["video"], 320) > ssim_to_source(palettegen, clips["video"], 320) + 0.01
    assert own.path.stat().st_size <= 1.05 * palettegen.stat().st_size


@pytest.mark.parametrize("colors", [5, 16])
def test_a_high_quality_palette_keeps_to_colors(clips, tmp_path, colors):
    """One of the `colors` entries is kept for transparency, as palettegen does."""
    converted = convert(clips["small"], tmp_path / "out.gif", high_quality=True, colors=colors, fps=5)
    assert 2 <= colours_used(converted.path) <= colors - 1


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory):
    """320x180, 2 s at 15 fps: a second of a zoom into the Mandelbrot set, a hard cut, a second of another zoom
    into it, coloured otherwise: each shot needs every colour a palette has, and few are shared."""
    path = tmp_path_factory.mktemp("shots") / "two-shots.mp4"
    ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=15,trim=duration=1,format=yuv420p[a];"
           "mandelbrot=size=320x180:rate=15:start_x=-0.743643887037151:start_y=0.131825904205330:"
           "start_scale=0.0005:outer=normalized_iteration_count,trim=duration=1,format=yuv420p[b];"
           "[a][b]concat=n=2", *X264, str(path))
    return path


def test_high_quality_gives_each_scene_a_palette_of_its_own(two_shots, tmp_path, monkeypatch):
    scenes = convert(two_shots, tmp_path / "scenes.gif", high_quality=True, width=320)
    monkeypatch.setattr(gif_plugin, "HIGH_QUALITY", dataclasses.replace(gif_plugin.HIGH_QUALITY,
                                                                        palette_per_scene=False))
    one = convert(two_shots, tmp_path / "one.gif", high_quality=True, width=320)
    # one palette: no frame has a table of its own; with a palette per scene, one shot's 15 frames have
    assert len(one.gif.local_tables) == 0 and len(scenes.gif.local_tables) >= 15
    assert ssim_to_source(scenes.path, two_shots, 320) > ssim_to_source(one.path, two_shots, 320) + 0.005
    # the second shot's first frame is stored whole, and each shot has more colours
    assert scenes.path.stat().st_size < 1.3 * one.path.stat().st_size
    assert (scenes.gif.frame_count, scenes.gif.delays, scenes.gif.loop_count) == (30, one.gif.delays, 0)
    assert scenes.progress == sorted(scenes.progress) and scenes.progress[-1] == 100.0
    assert not list((tmp_path / "scenes.work").iterdir())


@pytest.fixture(scope="module")
def zoom(tmp_path_factory):
    """320x180, 4 s at 15 fps: one shot, a zoom into the Mandelbrot set (textured, its colours moving)."""
    path = tmp_path_factory.mktemp("zoom") / "zoom.mp4"
    ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=15,trim=duration=4,format=yuv420p", *X264, str(path))
    return path


def palette_runs(palettes: list[bytes]) -> list[int]:
    """How many frames in a row each palette of a GIF's frames lasts."""
    return [len(list(run)) for _, run in itertools.groupby(palettes)]


def test_high_quality_fits_a_textured_scenes_palette_every_few_frames_and_a_plain_ones_not(zoom, clips, tmp_path,
                                                                                          monkeypatch):
    fitted = convert(zoom, tmp_path / "fitted.gif", high_quality=True, width=320)
    runs = palette_runs(fitted.gif.palettes)
    assert min(runs) >= gif_plugin.HIGH_QUALITY.palette_frames and sum(runs) == 60
    plain = convert(clips["video"], tmp_path / "plain.gif", high_quality=True, width=320)
    assert len(palette_runs(plain.gif.palettes)) == 1

    monkeypatch.setattr(gif_plugin, "HIGH_QUALITY", dataclasses.replace(gif_plugin.HIGH_QUALITY, palette_frames=0))
    per_scene = convert(zoom, tmp_path / "per-scene.gif", high_quality=True, width=320)
    assert len(runs) >= len(palette_runs(per_scene.gif.palettes)) + 2
    # the palettes fitted to a few frames each draw them at least as faithfully, for a few more bytes (each
    # change's first frame is held afresh)
    assert ssim_to_source(fitted.path, zoom, 320) >= ssim_to_source(per_scene.path, zoom, 320)
    assert fitted.path.stat().st_size < 1.05 * per_scene.path.stat().st_size


def test_high_quality_makes_two_scenes_palettes_at_once_giving_the_gif_made_one_palette_at_a_time(
        two_shots, tmp_path, monkeypatch):
    monkeypatch.setattr(gif_plugin, "PALETTE_THREADS", 1)
    one_at_a_time = convert(two_shots, tmp_path / "one-at-a-time.gif", high_quality=True, width=320)
    monkeypatch.setattr(gif_plugin, "PALETTE_THREADS", 2)
    both_started = threading.Barrier(2, timeout=30)  # each palette waits for the other to start: at once, or broken
    make_palette = gif_plugin.make_palette

    def made_beside_the_other(*args, **kwargs):
        both_started.wait()
        return make_palette(*args, **kwargs)

    monkeypatch.setattr(gif_plugin, "make_palette", made_beside_the_other)
    at_once = convert(two_shots, tmp_path / "at-once.gif", high_quality=True, width=320)
    assert len(at_once.gif.local_tables) >= 15  # two scenes, two palettes
    assert at_once.path.read_bytes() == one_at_a_time.path.read_bytes()
    assert not list((tmp_path / "at-once.work").iterdir())


def test_high_quality_gives_the_few_frames_a_span_shows_past_a_cut_a_palette_of_their_own(two_shots, tmp_path,
                                                                                         monkeypatch):
    # the span ends three frames after the cut: too short a scene inside a clip, not at its end
    tail = convert(two_shots, tmp_path / "tail.gif", high_quality=True, width=320, end_time=1.2)
    monkeypatch.setattr(scenes, "MIN_EDGE_SCENE_FRAMES", scenes.MIN_SCENE_FRAMES)
    merged = convert(two_shots, tmp_path / "merged.gif", high_quality=True, width=320, end_time=1.2)
    assert tail.gif.frame_count == merged.gif.frame_count == 18
    assert tail.gif.palettes[15] != tail.gif.palettes[14] and merged.gif.palettes[15] == merged.gif.palettes[14]
    assert ssim_to_source(tail.path, two_shots, 320) > ssim_to_source(merged.path, two_shots, 320) + 0.005


def test_high_quality_sampling_every_nth_frame_gives_each_scene_a_palette_from_the_very_frame_of_its_cut(
        two_shots, tmp_path, monkeypatch):
    # the palettes sampled from every 7th frame (0, 7, 14 | 21, 28), the cut at frame 15 all the same
    monkeypatch.setattr(gif_plugin, "SAMPLE_MB", 1.0)
    monkeypatch.setattr(gif_plugin, "MIN_SAMPLED_SCENE_FRAMES", 8)
    kept = convert(two_shots, tmp_path / "kept.gif", high_quality=True, width=320)
    monkeypatch.setattr(gif_plugin, "FRAMES_ON_DISK_MB", 0.0)  # 30 frames of 320x180 (6.6 MiB) decoded again
    decoded = convert(two_shots, tmp_path / "decoded.gif", high_quality=True, width=320)
    assert decoded.gif.frame_count == 30 and decoded.gif.local_table_frames[-15:] == list(range(15, 30))
    assert 14 not in decoded.gif.local_table_frames
    assert decoded.path.read_bytes() == kept.path.read_bytes()  # the same GIF whether frames are kept or not
    assert decoded.progress == sorted(decoded.progress) and decoded.progress[-1] == 100.0


def test_without_gifsicle_high_quality_still_gives_each_scene_a_palette_of_its_own(two_shots, tmp_path,
                                                                                    without_gifsicle):
    converted = convert(two_shots, tmp_path / "out.gif", high_quality=True, width=320)
    assert len(converted.gif.local_tables) >= 15 and converted.gif.frame_count == 30


def grainy_scene(path, grain: int, scale: int = 1):
    """320x180 (times `scale`), 2 s at 15 fps, as a fixed camera films it: a detailed still scene with sensor
    grain (temporal noise of strength `grain`) and a 50x40 box crossing it, 100 px a second from x=20, at y=70
    (all times `scale`)."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={320 * scale}x{180 * scale}:rate=15:duration=0.1,"
           "loop=loop=29:size=1:start=0,setpts=N/15/TB[bg];"
           f"color=c=#f1faee:size={50 * scale}x{40 * scale}:rate=15[box];"
           f"[bg][box]overlay=x={20 * scale}+{100 * scale}*t:y={70 * scale}:shortest=1,"
           f"noise=alls={grain}:allf=t+u:all_seed=7",
           "-c:v", "libx264", "-crf", "4", "-pix_fmt", "yuv420p", str(path))
    return path


def assert_the_box_shows_where_it_is(gif) -> None:
    """The grainy scene's box, in a GIF of it 320 px wide: its middle shows the box's colour in every frame."""
    for number, frame in enumerate(rgb_frames(gif)):
        x, y = round(20 + 100 * number / 15) + 25, 90
        shown = frame[(y * 320 + x) * 3:][:3]
        assert all(abs(a - b) <= 40 for a, b in zip(shown, (0xf1, 0xfa, 0xee), strict=True)), number


def held_and_not(source, tmp_path, monkeypatch, **rule_off):
    """`source` made with `high_quality` (320 px wide), then again with HIGH_QUALITY changed by `rule_off` (one of
    its rules for holding pixels turned off)."""
    held = convert(source, tmp_path / "held.gif", high_quality=True, width=320)
    monkeypatch.setattr(gif_plugin, "HIGH_QUALITY", dataclasses.replace(gif_plugin.HIGH_QUALITY, **rule_off))
    return held, convert(source, tmp_path / "not-held.gif", high_quality=True, width=320)


@pytest.fixture(scope="module")
def fixed_camera(tmp_path_factory):
    return grainy_scene(tmp_path_factory.mktemp("fixed") / "fixed.mp4", grain=2)


def test_high_quality_stores_a_grainy_still_background_once_and_looks_the_same(fixed_camera, tmp_path,
                                                                                monkeypatch):
    held, every = held_and_not(fixed_camera, tmp_path, monkeypatch, still_tolerance=0)
    assert held.path.stat().st_size < 0.5 * every.path.stat().st_size
    # the grain itself is what is not stored again: SSIM against the grainy source drops a little
    assert ssim_to_source(held.path, fixed_camera, 320) > ssim_to_source(every.path, fixed_camera, 320) - 0.015
    assert (held.gif.frame_count, held.gif.duration, held.gif.loop_count) == (every.gif.frame_count,
                                                                              every.gif.duration, 0)
    assert held.progress == sorted(held.progress) and held.progress[-1] == 100.0
    assert not list((tmp_path / "held.work").iterdir())


def test_high_quality_shows_a_grainy_still_background_as_its_mean_in_a_smaller_file_that_looks_the_same(
        fixed_camera, tmp_path, monkeypatch):
    settled, unsettled = held_and_not(fixed_camera, tmp_path, monkeypatch, settle_tolerance=0)
    assert settled.path.stat().st_size < 0.97 * unsettled.path.stat().st_size
    assert ssim_to_source(settled.path, fixed_camera, 320) > ssim_to_source(unsettled.path, fixed_camera, 320) - 0.005
    assert_the_box_shows_where_it_is(settled.path)


@pytest.fixture(scope="module")
def flickering_camera(tmp_path_factory):
    """The fixed camera's grain three times as strong: most grainy pixels flicker past the still tolerance for a
    frame and back."""
    return grainy_scene(tmp_path_factory.mktemp("flickering") / "flickering.mp4", grain=6)


def test_high_quality_holds_grain_flickering_for_a_frame_and_still_shows_what_moves_where_it_is(
        flickering_camera, tmp_path, monkeypatch):
    held, flickering = held_and_not(flickering_camera, tmp_path, monkeypatch, flicker_tolerance=0)
    assert held.path.stat().st_size < 0.7 * flickering.path.stat().st_size
    # as with still pixels, the grain is what is not stored: SSIM against the grainy source drops a little
    assert ssim_to_source(held.path, flickering_camera, 320) > ssim_to_source(flickering.path, flickering_camera,
                                                                             320) - 0.015
    assert_the_box_shows_where_it_is(held.path)


@pytest.fixture(scope="module")
def dim_camera(tmp_path_factory):
    """The fixed camera at twice the size in dim light: noise of strength 6 moves nearly every pixel by a few
    levels, so every pixel has moving neighbours and half of the changes do not fall back."""
    return grainy_scene(tmp_path_factory.mktemp("dim") / "dim.mp4", grain=6, scale=2)


def test_high_quality_holds_noise_all_over_the_picture_and_still_shows_what_moves_where_it_is(
        dim_camera, tmp_path, monkeypatch):
    # the settled first frame off too: it leaves a noisy scene to the noise rule, and would settle it without
    held, noisy = held_and_not(dim_camera, tmp_path, monkeypatch, noise_tolerance=0, settle_tolerance=0)
    assert held.path.stat().st_size < 0.75 * noisy.path.stat().st_size
    # the noise is what is not stored: SSIM against the noisy source drops a little
    assert ssim_to_source(held.path, dim_camera, 320) > ssim_to_source(noisy.path, dim_camera, 320) - 0.015
    assert_the_box_shows_where_it_is(held.path)


def test_high_quality_keeps_a_transparent_source_transparent(tmp_path):
    source = tmp_path / "alpha.mov"  # 64x48, the left half transparent (ProRes 4444 carries alpha)
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x48:r=10:d=1,format=rgba,"
           "geq=r='r(X,Y)':g='g(X,Y)':b='b(X,Y)':a='if(lt(X,32),0,255)'",
           "-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le", str(source))
    converted = convert(source, tmp_path / "hq.gif", high_quality=True, width=64)
    first = rgb_frames(converted.path, pix_fmt="rgba")[0]
    alpha = first[3::4]
    assert alpha[:32].count(0) == 32 and alpha[32:64].count(255) == 32  # first row: left clear, right red


def test_a_lossy_option_makes_a_high_quality_gif_smaller(camera, camera_hq, tmp_path):
    heavy = convert(camera, tmp_path / "heavy.gif", high_quality=True, width=320, lossy=80).path
    assert heavy.stat().st_size < 0.8 * camera_hq.path.stat().st_size


def test_with_high_quality_the_default_bayer_dither_means_no_dither_and_others_are_kept(clips, tmp_path):
    def made(name: str, dither: str) -> bytes:
        return convert(clips["small"], tmp_path / name, high_quality=True, fps=5, dither=dither).path.read_bytes()

    assert made("bayer.gif", "bayer") == made("none.gif", "none") != made("fs.gif", "floyd_steinberg")
