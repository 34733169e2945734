import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.support.conversion import convert
from tests.support.media import ffmpeg
from tests.support.processes import ffmpeg_pids_with
from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.params import parse_params
from transmute.media.conversion import convert_file
from transmute.media.explain import explain_ffmpeg_error
from transmute.media.probe import probe
from transmute.media.run import run_ffmpeg
from transmute.settings import LimitsConfig

LIMITS = LimitsConfig().for_conversion()

RUN_SECONDS = 30
"""Wall time of the long realtime runs: a run that ends well before it was killed, whatever the machine."""


def realtime_run(tmp_path: Path, seconds: float) -> tuple[list[str], str]:
    """ffmpeg arguments that take `seconds` of wall time (input read at its native rate), and a marker
    that appears in the command line of the process."""
    marker = f"transmute-test-{uuid.uuid4().hex}"
    args = ["-re", "-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=25:duration={seconds}",
            "-f", "null", "-y", str(tmp_path / f"{marker}.nut")]
    return args, marker


def test_probe_reports_size_duration_rate_codec_and_sound(clips):
    info = probe(clips["video"], limits=LIMITS)
    assert (info.width, info.height) == (320, 240)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert info.fps == pytest.approx(30.0)
    assert info.frame_count == 90
    assert info.video_codec == "h264" and "mp4" in info.container
    assert info.has_audio is True
    assert probe(clips["small"], limits=LIMITS).has_audio is False


def test_a_source_described_elsewhere_is_still_held_to_this_conversions_limits(clips, tmp_path):
    described = probe(clips["video"], limits=LIMITS)  # as the gateway probed it, under its own settings
    stricter = LimitsConfig(max_source_duration=1).for_conversion()
    output = tmp_path / "out.gif"
    with pytest.raises(MediaError, match=r"long; transmute accepts sources up to 1 s .*TRANSMUTE_MAX_SOURCE_DURATION"):
        convert_file(clips["video"], output, parse_params({"format": "gif"}), limits=stricter, work_dir=tmp_path,
                     media=described)
    assert not output.exists()


def test_probing_a_text_file_says_it_is_not_a_readable_video(clips):
    with pytest.raises(MediaError) as refused:
        probe(clips["text"], limits=LIMITS)
    assert refused.value.message.startswith("The file is not a video transmute can read (ffmpeg: ")
    assert "\n" not in refused.value.message


def test_probing_an_audio_only_file_says_it_has_no_video_stream(clips):
    with pytest.raises(MediaError, match=r"^The file has no video stream\.$"):
        probe(clips["audio"], limits=LIMITS)


def test_probing_an_empty_file_says_it_is_empty(clips):
    with pytest.raises(MediaError, match="empty"):
        probe(clips["empty"], limits=LIMITS)


def test_probing_a_missing_file_says_it_does_not_exist(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        probe(tmp_path / "nowhere.mp4", limits=LIMITS)


@pytest.mark.parametrize("path", ["http://127.0.0.1:9/video.mp4", "file:///etc/passwd", "-"])
def test_probing_refuses_anything_but_a_local_path(path):
    with pytest.raises(MediaError, match="Only local files"):
        probe(path, limits=LIMITS)


def test_a_failing_ffmpeg_run_is_explained_in_one_short_line(clips, tmp_path):
    with pytest.raises(MediaError) as failed:
        run_ffmpeg(["-i", f"file:{clips['text']}", str(tmp_path / "out.gif")], expected_duration=1, limits=LIMITS)
    message = failed.value.message
    assert message.startswith("The file is not a video transmute can read")
    assert "\n" not in message and len(message) < 300


@pytest.mark.parametrize(("stderr", "expected"), [
    (["[mov,mp4 @ 0x5581] moov atom not found", "in.mp4: Invalid data found when processing input"],
     "incomplete or damaged MP4"),
    (["Stream map '0:v' matches no streams.", "To ignore this, add a trailing '?' to the map."],
     "The file has no video stream."),
    (["/tmp/out.gif: Permission denied"], "permission denied"),
    (["av_interleaved_write_frame(): No space left on device", "Conversion failed!"], "no space left"),
    (["[h264 @ 0x1] Decoder (codec hevc) not found for input stream #0:0"], "codec transmute's ffmpeg"),
    (["[Parsed_scale_0 @ 0x55d0c0a3] Something unusual happened here", "Conversion failed!"],
     "ffmpeg could not convert the video (Something unusual happened here)."),
])
def test_well_known_ffmpeg_errors_become_sentences_a_person_can_act_on(stderr, expected):
    assert expected in explain_ffmpeg_error(stderr)


def test_a_very_long_ffmpeg_error_line_is_trimmed():
    message = explain_ffmpeg_error(["x" * 5000])
    assert len(message) < 260 and message.endswith("...).")


def test_progress_is_monotonic_moves_through_the_run_and_ends_at_100(tmp_path):
    args, _ = realtime_run(tmp_path, 1.2)
    reports: list[float] = []
    run_ffmpeg(args, expected_duration=1.2, limits=LIMITS, progress=reports.append, progress_span=(20, 100))
    assert reports == sorted(reports)
    assert reports[-1] == 100 and reports.count(100) == 1
    assert all(20 <= value <= 100 for value in reports)
    assert len([value for value in reports if 25 < value < 95]) >= 2


def test_a_run_tells_how_many_video_frames_it_encoded(tmp_path):
    frames = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.4", "-f", "lavfi", "-i", "sine=duration=1"]
    both = run_ffmpeg([*frames, "-c:v", "mpeg4", "-y", str(tmp_path / "both.mp4")], expected_duration=1, limits=LIMITS)
    # the video's frames all dropped (as after a failed seek): the file holds the sound alone
    sound = run_ffmpeg([*frames, "-c:v", "mpeg4", "-vf", "trim=start=5", "-y", str(tmp_path / "sound.mp4")],
                       expected_duration=1, limits=LIMITS)
    assert (both, sound) == (10, 0)


def test_work_given_to_do_meanwhile_runs_while_ffmpeg_runs_and_is_done_when_the_run_returns(tmp_path):
    args, marker = realtime_run(tmp_path, 1.2)
    seen: list[bool] = []

    def meanwhile() -> None:
        seen.append(bool(ffmpeg_pids_with(marker)))

    run_ffmpeg(args, expected_duration=1.2, limits=LIMITS, meanwhile=meanwhile)
    assert seen == [True]


def test_setting_cancel_kills_ffmpeg_long_before_its_run_would_end(tmp_path):
    args, marker = realtime_run(tmp_path, RUN_SECONDS)
    cancel = threading.Event()
    started = time.monotonic()
    with pytest.raises(ConversionCancelled):
        run_ffmpeg(args, expected_duration=RUN_SECONDS, limits=LIMITS, cancel=cancel,
                   progress=lambda percent: cancel.set())
    assert time.monotonic() - started < RUN_SECONDS / 2  # killed, not run to its end
    assert ffmpeg_pids_with(marker) == []


def test_a_run_past_its_timeout_is_killed_and_reported(tmp_path):
    args, marker = realtime_run(tmp_path, RUN_SECONDS)
    started = time.monotonic()
    with pytest.raises(ConversionTimeout, match=r"longer than the 0\.6 s allowed"):
        run_ffmpeg(args, expected_duration=RUN_SECONDS, limits=LIMITS, timeout=0.6)
    assert time.monotonic() - started < RUN_SECONDS / 2  # killed, not run to its end
    assert ffmpeg_pids_with(marker) == []


def test_an_interrupted_run_leaves_no_ffmpeg_behind(tmp_path):
    args, marker = realtime_run(tmp_path, RUN_SECONDS)

    def interrupt(percent: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ffmpeg(args, expected_duration=RUN_SECONDS, limits=LIMITS, progress=interrupt)
    assert ffmpeg_pids_with(marker) == []


def test_ffmpeg_runs_under_the_memory_ceiling_and_a_run_past_it_fails_with_a_clear_message(clips):
    # 15 frames of 6000x6000 (54 MB each in yuv420p) held by reverse: about 800 MB, past a 300 MB ceiling.
    greedy = ["-i", f"file:{clips['small']}", "-vf", "scale=6000:6000,reverse", "-f", "null", "-"]
    run_ffmpeg(greedy, expected_duration=1, limits=LIMITS)  # the default ceiling, 1536 MB, holds it
    with pytest.raises(MediaError) as stopped:
        run_ffmpeg(greedy, expected_duration=1, limits=LimitsConfig(max_conversion_memory_mb=300).for_conversion())
    assert stopped.value.message.startswith("The conversion needed more than 300 MB of memory "
                                            "(TRANSMUTE_MAX_CONVERSION_MEMORY_MB) and was stopped")


def test_the_memory_ceiling_is_the_address_space_limit_of_the_ffmpeg_child(tmp_path):
    args, marker = realtime_run(tmp_path, RUN_SECONDS)
    limits: list[str] = []

    def read_limit(percent: float) -> None:
        for pid in ffmpeg_pids_with(marker):
            limits.extend(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
                          if line.startswith("Max address space"))
        raise ConversionCancelled("seen")

    with pytest.raises(ConversionCancelled):
        run_ffmpeg(args, expected_duration=RUN_SECONDS, progress=read_limit,
                   limits=LimitsConfig(max_conversion_memory_mb=900).for_conversion())
    assert limits and limits[0].split()[3:5] == [str(900 * 1024 * 1024)] * 2


def test_a_many_threaded_ffmpeg_converts_under_the_default_memory_ceiling(tmp_path):
    # As on a host with 48 cores (ffmpeg starts a thread a core): each thread's malloc arena reserves address
    # space, which alone exceeded the ceiling before the arenas were capped.
    source = tmp_path / "hd.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=2", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(source))
    threads = ["-threads", "48", "-filter_threads", "48"]
    run_ffmpeg([*threads, "-i", f"file:{source}", *threads, "-filter_complex",
                "[0:v]fps=15,scale=480:-1,split[a][b];[a]palettegen[p];[b][p]paletteuse", "-y",
                str(tmp_path / "out.gif")], expected_duration=2, limits=LIMITS)
    assert probe(tmp_path / "out.gif", limits=LIMITS).width == 480


@pytest.fixture(scope="module")
def cut_between_keyframes(tmp_path_factory) -> Path:
    """3 s of testsrc2, keyframes 2 s apart, cut 1 s in without re-encoding and keeping the packets from there,
    keyframe or not (as some trimming tools do): its first frames need a keyframe the file lacks, and ffmpeg
    cannot seek in it, not even to its start."""
    folder = tmp_path_factory.mktemp("cut")
    whole, cut = folder / "whole.mp4", folder / "cut.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=3", "-c:v", "libx264", "-g", "60",
           "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(whole))
    ffmpeg("-i", str(whole), "-ss", "1", "-c", "copy", "-copyinkf", str(cut))
    return cut


def video_seconds(path: Path) -> float:
    """How long the video of `path` lasts, its frames' durations summed (ffprobe's packets)."""
    done = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "packet=duration_time", "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                          check=True)
    return sum(float(line.strip(",")) for line in done.stdout.split() if line.strip(",") not in ("", "N/A"))


@pytest.mark.parametrize(("name", "options"), [("gif", {}), ("gif", {"high_quality": True}), ("mp4", {}),
                                               ("apng", {})])
def test_a_file_cut_between_keyframes_converts_from_its_first_keyframe_on(cut_between_keyframes, tmp_path, name,
                                                                          options):
    output = tmp_path / f"out.{name}"
    convert(cut_between_keyframes, output, format=name, **options)
    assert video_seconds(output) >= 0.95  # the second from the keyframe on, at least
