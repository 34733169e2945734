"""The mp4 and webm formats, on real clips made with ffmpeg: what a player, a site or ffprobe sees of the result."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.conversion import convert
from tests.support.embedded import embedded_client
from tests.support.media import ffmpeg
from tests.support.tasks import upload, wait_finished
from transmute.cli import main
from transmute.core.errors import ConversionCancelled, ConversionTimeout
from transmute.media.audio import tempo_factors
from transmute.media.encode import source_rate

TRANSMUTE = Path(sys.executable).with_name("transmute")
FORMATS = {"mp4": ("h264", "aac"), "webm": ("vp9", "opus")}


def probe(path: Path) -> dict:
    """ffprobe's streams and format of a file."""
    done = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-count_frames", "-of", "json",
                           str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def stream(info: dict, kind: str) -> dict | None:
    return next((s for s in info["streams"] if s["codec_type"] == kind), None)


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level atoms in file order (ftyp, moov, mdat...)."""
    data, boxes, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        boxes.append(kind)
        if size < 8:
            break
        pos += size
    return boxes


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """`odd` (321x241, 30 fps, 2 s, with sound), `gif` (120x90, 12 fps, 2 s), `alpha` (ProRes 4444, 64x48,
    red at half opacity), `bigger` (640x480, 4 s) and `longer` (640x480, 16 s): long enough to watch progress
    (several reports a tenth of a second apart) even on a fast machine."""
    folder = tmp_path_factory.mktemp("video-formats")
    made = {"odd": folder / "odd.mp4", "gif": folder / "clip.gif", "alpha": folder / "alpha.mov",
            "bigger": folder / "bigger.mp4", "longer": folder / "longer.mp4"}
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=321x241:rate=30:duration=2", "-f", "lavfi",
           "-i", "sine=frequency=440:duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p",
           "-c:a", "aac", "-shortest", str(made["odd"]))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=120x90:rate=12:duration=2", "-vf",
           "split[a][b];[a]palettegen[p];[b][p]paletteuse", str(made["gif"]))
    ffmpeg("-f", "lavfi", "-i", "color=c=red@0.5:s=64x48:r=10:d=1,format=rgba", "-c:v", "prores_ks",
           "-profile:v", "4444", "-pix_fmt", "yuva444p10le", str(made["alpha"]))
    for name, seconds in (("bigger", 4), ("longer", 16)):
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=640x480:rate=30:duration={seconds}", "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(made[name]))
    return made


# ------------------------------------------------------------------------------------------ mp4


@pytest.fixture(scope="module")
def default_mp4(clips, tmp_path_factory) -> Path:
    return convert(clips["video"], tmp_path_factory.mktemp("mp4") / "out.mp4", format="mp4").path


def test_an_mp4_is_h264_yuv420p_with_aac_sound_at_the_sources_size_and_rate(default_mp4):
    info = probe(default_mp4)
    video, audio = stream(info, "video"), stream(info, "audio")
    assert (video["codec_name"], video["pix_fmt"], video["profile"]) == ("h264", "yuv420p", "High")
    assert (video["width"], video["height"]) == (320, 240)
    assert video["r_frame_rate"] == "30/1" and int(video["nb_read_frames"]) == 90
    assert audio is not None and audio["codec_name"] == "aac"
    assert float(info["format"]["duration"]) == pytest.approx(3.0, abs=0.1)


def test_an_mp4_has_its_index_before_its_media_so_it_plays_while_downloading(default_mp4):
    boxes = top_level_boxes(default_mp4)
    assert boxes[0] == "ftyp" and "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")


def test_an_odd_sized_4_4_4_source_gives_even_dimensions_in_yuv420p(media, tmp_path):
    video = stream(probe(convert(media["odd"], tmp_path / "out.mp4", format="mp4").path), "video")
    assert (video["width"], video["height"], video["pix_fmt"]) == (320, 240, "yuv420p")
    narrow = stream(probe(convert(media["odd"], tmp_path / "narrow.mp4", format="mp4", width=99).path), "video")
    assert (narrow["width"], narrow["height"]) == (98, 74)  # 99x74.1, rounded down to even


def test_a_gif_becomes_an_mp4_people_can_post(media, tmp_path):
    info = probe(convert(media["gif"], tmp_path / "out.mp4", format="mp4").path)
    video = stream(info, "video")
    assert (video["codec_name"], video["pix_fmt"], video["width"], video["height"]) == ("h264", "yuv420p", 120, 90)
    num, den = map(int, video["r_frame_rate"].split("/"))
    assert num / den == pytest.approx(12, rel=0.01)  # the GIF's rate, not the 100 Hz of its delay clock
    assert int(video["nb_read_frames"]) == 24
    assert stream(info, "audio") is None
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.1)


def test_a_higher_crf_gives_a_smaller_mp4_and_the_preset_is_x264s(clips, tmp_path):
    small = convert(clips["video"], tmp_path / "small.mp4", format="mp4", crf=40, audio="drop").path
    default = convert(clips["video"], tmp_path / "default.mp4", format="mp4", audio="drop").path
    assert small.stat().st_size < default.stat().st_size / 2
    fastest = convert(clips["video"], tmp_path / "fastest.mp4", format="mp4", preset="ultrafast").path
    assert stream(probe(fastest), "video")["profile"] == "Constrained Baseline"  # ultrafast: no B-frames, CAVLC


# ------------------------------------------------------------------------------------------ both formats


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize(("options", "seconds"), [
    ({"start_time": 0.5, "end_time": 2.5, "speed": 2}, 1.0),
    ({"start_time": 1, "end_time": 2, "speed": 0.25}, 4.0),  # atempo chained: 0.5 x 0.5
    ({"end_time": 2, "speed": 4}, 0.5),
])
def test_sound_follows_the_span_and_the_speed(clips, tmp_path, name, options, seconds):
    info = probe(convert(clips["video"], tmp_path / f"out.{name}", format=name, fps=20, **options).path)
    video, audio = stream(info, "video"), stream(info, "audio")
    assert (video["codec_name"], audio["codec_name"]) == FORMATS[name]
    assert int(video["nb_read_frames"]) == round(seconds * 20)
    assert float(info["format"]["duration"]) == pytest.approx(seconds, abs=0.1)
    if name == "mp4":  # WebM keeps no per-stream duration
        assert float(audio["duration"]) == pytest.approx(seconds, abs=0.1)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("options", [{"audio": "drop"}, {"reverse": True}, {"boomerang": True}])
def test_no_sound_when_dropped_or_played_backwards(clips, tmp_path, name, options):
    info = probe(convert(clips["video"], tmp_path / f"out.{name}", format=name, end_time=1, fps=10, **options).path)
    assert stream(info, "audio") is None
    assert int(stream(info, "video")["nb_read_frames"]) == (19 if options.get("boomerang") else 10)


@pytest.mark.parametrize("name", FORMATS)
def test_a_source_without_sound_converts_without_sound(clips, tmp_path, name):
    info = probe(convert(clips["small"], tmp_path / f"out.{name}", format=name).path)
    assert stream(info, "audio") is None and stream(info, "video")["codec_name"] == FORMATS[name][0]


# x264 at `slower` on 16 s, libvpx at cpu-used 2 on 4 s: each a run of seconds, so progress is seen moving.
@pytest.mark.parametrize(("name", "clip", "slow"), [("mp4", "longer", {"preset": "slower"}),
                                                    ("webm", "bigger", {"cpu_used": 2})])
def test_progress_rises_to_100_and_cancel_and_timeout_leave_no_file(media, tmp_path, name, clip, slow):
    reports = convert(media[clip], tmp_path / f"whole.{name}", format=name, **slow).progress
    assert reports == sorted(reports) and reports[-1] == 100 and reports.count(100) == 1
    assert len({round(value) for value in reports if 0 < value < 100}) >= 3

    cancel = threading.Event()
    with pytest.raises(ConversionCancelled):
        convert(media[clip], tmp_path / f"cancelled.{name}", format=name, cancel=cancel,
                on_progress=lambda percent: cancel.set(), **slow)
    assert not (tmp_path / f"cancelled.{name}").exists()

    with pytest.raises(ConversionTimeout, match=r"longer than the 0\.3 s allowed and was stopped; try a shorter"):
        convert(media[clip], tmp_path / f"late.{name}", format=name, timeout=0.3, **slow)
    assert not (tmp_path / f"late.{name}").exists()


# ------------------------------------------------------------------------------------------ webm


def test_a_webm_is_vp9_with_opus_sound(clips, tmp_path):
    info = probe(convert(clips["video"], tmp_path / "out.webm", format="webm").path)
    video = stream(info, "video")
    assert (video["codec_name"], video["pix_fmt"], video["width"], video["height"]) == ("vp9", "yuv420p", 320, 240)
    assert "alpha_mode" not in video.get("tags", {})
    assert stream(info, "audio")["codec_name"] == "opus"
    assert info["format"]["format_name"].startswith("matroska,webm")
    assert float(info["format"]["duration"]) == pytest.approx(3.0, abs=0.1)


def test_a_transparent_source_stays_transparent_in_webm(media, tmp_path):
    out = convert(media["alpha"], tmp_path / "out.webm", format="webm").path
    assert stream(probe(out), "video")["tags"]["alpha_mode"] == "1"
    # ffmpeg's own VP9 decoder ignores the alpha side channel; libvpx reads it, as browsers do.
    rgba = subprocess.run(["ffmpeg", "-v", "error", "-c:v", "libvpx-vp9", "-i", str(out), "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "rgba", "-"], capture_output=True, check=True).stdout
    assert len(rgba) == 64 * 48 * 4
    alpha, red = rgba[3::4], rgba[0::4]
    assert all(120 <= value <= 136 for value in alpha)  # half opaque, as the source
    assert min(red) > 240


def test_a_higher_crf_gives_a_smaller_webm(clips, tmp_path):
    small = convert(clips["video"], tmp_path / "small.webm", format="webm", crf=60, audio="drop").path
    default = convert(clips["video"], tmp_path / "default.webm", format="webm", audio="drop").path
    assert small.stat().st_size < default.stat().st_size / 2


# ------------------------------------------------------------------------------------------ the helpers


@pytest.mark.parametrize(("speed", "factors"), [(1.0, []), (2.0, [2.0]), (0.25, [0.5, 0.5]), (4.0, [2.0, 2.0]),
                                                (3.0, [2.0, 1.5]), (0.3, [0.5, 0.6])])
def test_atempo_factors_stay_within_what_one_filter_does_well(speed, factors):
    assert tempo_factors(speed) == pytest.approx(factors)


@pytest.mark.parametrize(("fps", "rate"), [(29.97, "30000/1001"), (30.0, "30"), (11.988, "12000/1001"),
                                           (12.5, "25/2"), (120.0, "60"), (240.0, "60"), (0.0, "25")])
def test_the_default_frame_rate_is_the_sources_as_an_exact_fraction(fps, rate):
    assert str(source_rate(fps)) == rate


# ------------------------------------------------------------------------------------------ API and CLI


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRANSMUTE_ALLOW_PRIVATE_URLS", "true")
        with embedded_client(tmp_path_factory.mktemp("video-api")) as client:
            yield client


def test_an_option_mp4_does_not_have_is_a_400_naming_it_and_listing_mp4s(api):
    response = api.post("/api/tasks/create/", json={"url": "http://127.0.0.1:9/a.mp4", "format": "mp4",
                                                    "dither": "bayer"})
    assert response.status_code == 400
    body = response.json()
    assert body["details"] == {"field": "dither"}
    assert "Unknown parameter 'dither' for the mp4 format" in body["error"]
    assert "crf, preset, audio" in body["error"]


@pytest.mark.parametrize(("name", "mime", "magic"), [("mp4", "video/mp4", b"ftyp"), ("webm", "video/webm",
                                                                                      b"\x1a\x45\xdf\xa3")])
def test_the_api_serves_the_result_with_its_extension_and_type(api, clips, name, mime, magic):
    created = upload(api, clips["small"], filename="video.mp4", format=name, width=64)
    status = wait_finished(api, created["task_id"])
    assert status["status"] == "done", status
    task_id = created["task_id"]
    result = api.get(f"/api/tasks/{task_id}/result/").json()["result"]
    assert result["filename"] == f"task_{task_id}_result.{name}" and result["format"] == name
    assert result["output_url"] == f"/media/results/task_{task_id}_result.{name}"
    download = api.get(f"/api/tasks/{task_id}/download/")
    assert download.headers["content-type"] == mime
    assert f'filename="task_{task_id}_result.{name}"' in download.headers["content-disposition"]
    assert magic in download.content[:12]
    served = api.get(result["output_url"])
    assert served.headers["content-type"] == mime and served.content == download.content


def test_the_cli_converts_to_mp4_with_its_own_options(clips, tmp_path):
    target = tmp_path / "out.mp4"
    done = subprocess.run([str(TRANSMUTE), "convert", str(clips["video"]), "-o", str(target), "--format", "mp4",
                           "--crf", "30", "--preset", "veryfast", "--audio", "drop"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = probe(target)
    assert stream(info, "video")["codec_name"] == "h264" and stream(info, "audio") is None


@pytest.mark.parametrize(("name", "listed", "absent"), [("mp4", ("--crf", "--preset", "--audio"), "--dither"),
                                                       ("webm", ("--crf", "--cpu-used", "--audio"), "--preset")])
def test_convert_help_for_a_format_lists_its_options(name, listed, absent):
    shown = CliRunner().invoke(main, ["convert", "--format", name, "--help"], terminal_width=200).output
    assert all(option in shown for option in listed)
    assert absent not in shown
