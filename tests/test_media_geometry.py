"""Real-world sources the shared media code must show as a player does: non-square pixels, rotation,
transparency (VP9 alpha, ProRes 4444, GIF) kept through grayscale, interlaced fields, truncated files.

Every input is made here with ffmpeg; what is asserted is what a user sees in the GIF.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.conversion import convert
from tests.support.gifs import rgb_frames
from tests.support.media import ffmpeg, make_truncated
from transmute.core.params import parse_params
from transmute.media.conversion import convert_file
from transmute.media.probe import probe
from transmute.settings import LimitsConfig

LIMITS = LimitsConfig().for_conversion()
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
HALF_TRANSPARENT = ("color=red:s=64x48:r=10:d=1,format=rgba,"
                    "geq=r='255':g='X*4':b='0':a='if(lt(X,32),0,255)'")
"""64x48 whose left half is fully transparent and right half opaque."""


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("geometry")
    made = {name: folder / filename for name, filename in {
        "anamorphic": "anamorphic.mp4", "pal_wide": "pal_wide.mp4", "upright": "upright.mp4",
        "rotated": "rotated.mp4", "vp9_alpha": "alpha.webm", "prores_4444": "alpha.mov",
        "transparent_gif": "alpha.gif", "interlaced": "interlaced.ts", "progressive": "progressive.ts",
        }.items()}
    # 960x720 stored, pixels 4:3 wide: a 16:9 picture (1280x720 shown).
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=960x720:r=5:d=1,setsar=4/3", *X264, str(made["anamorphic"]))
    # PAL 16:9: 720x576 stored, pixels 64:45 wide (1024x576 shown).
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=720x576:r=5:d=1,setsar=64/45", *X264, str(made["pal_wide"]))
    # A phone's portrait clip: 640x360 stored, turned by 270 degrees (360x640 shown).
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=5:d=1", *X264, str(made["upright"]))
    ffmpeg("-i", str(made["upright"]), "-c", "copy", "-metadata:s:v", "rotate=270", str(made["rotated"]))
    ffmpeg("-f", "lavfi", "-i", HALF_TRANSPARENT, "-c:v", "libvpx-vp9", "-pix_fmt", "yuva420p",
           str(made["vp9_alpha"]))
    ffmpeg("-f", "lavfi", "-i", HALF_TRANSPARENT, "-c:v", "prores_ks", "-profile:v", "4444",
           "-pix_fmt", "yuva444p10le", str(made["prores_4444"]))
    ffmpeg("-f", "lavfi", "-i", HALF_TRANSPARENT, "-filter_complex",
           "split[a][b];[a]palettegen[p];[b][p]paletteuse", str(made["transparent_gif"]))
    # A white bar moving fast across black, filmed at 50 fields a second and woven into 25 frames (top field
    # first), as broadcast MPEG-2 is: each frame holds the bar at two places, one on every other line.
    moving = ("color=black:s=320x240:r=50:d=1[ground];color=white:s=40x160:r=50[bar];"
              "[ground][bar]overlay=x='mod(t*600,280)':y=40:shortest=1")
    mpeg2 = ["-c:v", "mpeg2video", "-q:v", "2"]
    ffmpeg("-f", "lavfi", "-i", moving, "-vf", "tinterlace=mode=interleave_top,setfield=tff", *mpeg2,
           "-flags", "+ildct+ilme", "-top", "1", str(made["interlaced"]))
    ffmpeg("-f", "lavfi", "-i", moving, "-vf", "fps=25", *mpeg2, str(made["progressive"]))
    made["truncated"] = make_truncated(folder)
    made["whole"] = made["truncated"].with_name("whole.mp4")
    return made


def size_of(source: Path, tmp_path: Path, **values) -> tuple[int, int]:
    gif = convert(source, tmp_path / "out.gif", fps=2, **values).gif
    return gif.width, gif.height


# ------------------------------------------------------------------------------------------ pixel shape


def test_a_source_with_wide_pixels_keeps_its_displayed_16_9_shape(sources, tmp_path):
    assert size_of(sources["anamorphic"], tmp_path) == (480, 270)


def test_pal_16_9_keeps_its_displayed_shape(sources, tmp_path):
    assert size_of(sources["pal_wide"], tmp_path) == (480, 270)


def test_keeping_the_original_size_keeps_the_displayed_size(sources, tmp_path):
    assert size_of(sources["anamorphic"], tmp_path, keep_original_size=True) == (1280, 720)


def test_an_explicit_width_follows_the_displayed_aspect_ratio(sources, tmp_path):
    assert size_of(sources["pal_wide"], tmp_path, width=320) == (320, 180)


# ------------------------------------------------------------------------------------------ rotation


def test_a_rotated_portrait_clip_is_not_enlarged_past_its_displayed_width(sources, tmp_path):
    assert probe(sources["rotated"], limits=LIMITS).rotation in (90, 270)
    assert size_of(sources["rotated"], tmp_path) == (360, 640)


def test_a_rotated_clip_scales_by_its_displayed_width(sources, tmp_path):
    assert size_of(sources["rotated"], tmp_path, width=180) == (180, 320)


# ------------------------------------------------------------------------------------------ transparency


def transparent_share(gif: Path) -> float:
    """Share of the first frame's pixels a viewer shows as fully transparent."""
    frame = rgb_frames(gif, pix_fmt="rgba")[0]
    alpha = frame[3::4]
    return sum(1 for value in alpha if value == 0) / len(alpha)


def test_vp9_alpha_stays_transparent(sources, tmp_path):
    converted = convert(sources["vp9_alpha"], tmp_path / "out.gif", fps=5)
    assert transparent_share(converted.path) == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("source", ["prores_4444", "transparent_gif", "vp9_alpha"])
def test_grayscale_keeps_transparency(sources, tmp_path, source):
    converted = convert(sources[source], tmp_path / "out.gif", fps=5, grayscale=True)
    assert transparent_share(converted.path) == pytest.approx(0.5, abs=0.05)
    opaque = [pixel for pixel in zip(*(iter(rgb_frames(converted.path, pix_fmt="rgba")[0]),) * 4, strict=True)
              if pixel[3] == 255]
    assert opaque and all(r == g == b for r, g, b, _ in opaque)


# ------------------------------------------------------------------------------------------ interlacing


def comb(gif: Path) -> float:
    """How combed the frames look: the difference between neighbouring lines over that between lines two
    apart. Two fields woven together make neighbours differ on every moving edge (well above 1); a whole
    picture's neighbouring lines are at least as alike as lines two apart (1 or less)."""
    ratios = []
    for frame in rgb_frames(gif):
        width = read_width(gif)
        rows = [frame[y * width * 3: (y + 1) * width * 3: 3] for y in range(len(frame) // (width * 3))]
        near = sum(abs(a - b) for y in range(len(rows) - 2) for a, b in zip(rows[y], rows[y + 1], strict=True))
        far = sum(abs(a - b) for y in range(len(rows) - 2) for a, b in zip(rows[y], rows[y + 2], strict=True))
        ratios.append(near / max(far, 1))
    return max(ratios)


def read_width(gif: Path) -> int:
    return int.from_bytes(gif.read_bytes()[6:8], "little")


def test_an_interlaced_source_is_probed_as_interlaced(sources):
    assert probe(sources["interlaced"], limits=LIMITS).interlaced
    assert not probe(sources["progressive"], limits=LIMITS).interlaced


def test_an_interlaced_source_shows_no_comb_on_moving_edges(sources, tmp_path):
    whole = comb(convert(sources["progressive"], tmp_path / "p.gif", fps=5, keep_original_size=True).path)
    woven = comb(convert(sources["interlaced"], tmp_path / "i.gif", fps=5, keep_original_size=True).path)
    assert whole <= 1.2
    assert woven <= 1.2, f"the moving bar is combed (neighbouring lines differ {woven:.1f}x lines two apart)"


# ------------------------------------------------------------------------------------------ truncation


def test_a_truncated_source_converts_with_a_warning(sources, tmp_path):
    assert probe(sources["truncated"], limits=LIMITS).duration == pytest.approx(4, abs=0.1)
    warnings = convert_file(sources["truncated"], tmp_path / "out.gif", parse_params({"fps": 5}), work_dir=tmp_path,
                            limits=LIMITS).warnings
    assert len(warnings) == 1
    assert "instead of the 4.0 s" in warnings[0] and "truncated" in warnings[0]


@pytest.mark.parametrize("values", [{"fps": 5}, {"fps": 1}, {"fps": 1, "boomerang": True},
                                    {"fps": 1, "start_time": 1.2, "end_time": 3.9, "speed": 0.5}])
def test_a_whole_source_converts_without_a_warning(sources, tmp_path, values):
    converted = convert_file(sources["whole"], tmp_path / "out.gif", parse_params(values), work_dir=tmp_path,
                             limits=LIMITS)
    assert converted.warnings == []
