"""ffmpeg is handed one local regular file that is a real video container, within limits, and dies with
its parent. Playlists and file lists in disguise are refused before their demuxer opens anything: a canary
HTTP server on 127.0.0.1 sees no request, whether they come through the API or `transmute convert`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.support.embedded import embedded_client
from tests.support.media import ffmpeg, make_clip
from tests.support.net import QuietHandler, serving
from tests.support.processes import ffmpeg_pids_with, is_alive, live_ffmpeg_children
from tests.support.servers import TRANSMUTE
from tests.support.tasks import upload, wait_finished
from tests.support.waiting import wait_for
from transmute.core.errors import MediaError
from transmute.core.params import parse_params
from transmute.media.conversion import convert_file
from transmute.media.inputs import ALLOWED_DEMUXERS
from transmute.media.limits import check_decode, check_output
from transmute.media.probe import probe
from transmute.media.process import child_options, ffmpeg_program
from transmute.media.run import run_ffmpeg
from transmute.settings import LimitsConfig

LIMITS = LimitsConfig().for_conversion()


class Canary(QuietHandler):
    """Records the path of every request it sees."""

    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def canary() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request; the base URL and the list of paths it saw."""
    hits: list[str] = []
    with serving(type("Handler", (Canary,), {"hits": hits})) as base:
        yield base, hits


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hardening")


@pytest.fixture(scope="module")
def clip(folder: Path) -> Path:
    return make_clip(folder / "clip.mp4", "testsrc2=size=160x120:rate=10:duration=2")


@pytest.fixture(scope="module")
def disguised(folder: Path, clip: Path, canary: tuple[str, list[str]]) -> dict[str, Path]:
    """Files with video names whose content is a playlist, a list of files or a session description, each
    pointing at the canary and at local files (/etc/passwd, and the real clip next to them)."""
    base, _ = canary
    files = {
        "hls playlist as .avi": ("playlist.avi", f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{base}/hls.ts\n"
                                                 "#EXTINF:10,\n/etc/passwd\n#EXTINF:10,\nclip.mp4\n#EXT-X-ENDLIST\n"),
        "hls master as .mp4": ("master.mp4", f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n{base}/variant.m3u8\n"),
        "ffconcat of urls as .mp4": ("list.mp4", f"ffconcat version 1.0\nfile '{base}/concat.mp4'\n"
                                                 "file '/etc/passwd'\n"),
        "ffconcat of the clip next to it as .mp4": ("relative.mp4", "ffconcat version 1.0\nfile clip.mp4\n"),
        "sdp as .mkv": ("session.mkv", "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
                                       "m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n"),
    }
    made = {}
    for name, (filename, text) in files.items():
        made[name] = folder / filename
        made[name].write_text(textwrap.dedent(text))
    still = folder / "still.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1", "-f", "image2", "-c:v", "png", str(still))
    made["png image as .mp4"] = still
    return made


DISGUISES = ["hls playlist as .avi", "hls master as .mp4", "ffconcat of urls as .mp4",
             "ffconcat of the clip next to it as .mp4", "sdp as .mkv", "png image as .mp4"]
KIND = {"hls playlist as .avi": "HLS playlist", "hls master as .mp4": "HLS playlist",
        "ffconcat of urls as .mp4": "ffconcat list", "ffconcat of the clip next to it as .mp4": "ffconcat list",
        "sdp as .mkv": "SDP session description", "png image as .mp4": "still image"}


# ------------------------------------------------------------------------------------------ the probe


@pytest.mark.parametrize("name", DISGUISES)
def test_the_probe_refuses_a_playlist_or_list_in_disguise_and_opens_nothing(disguised, canary, name):
    _, hits = canary
    with pytest.raises(MediaError) as refused:
        probe(disguised[name], limits=LIMITS)
    assert KIND[name] in refused.value.message
    assert refused.value.message.startswith("The file is not a video transmute can read")
    assert "\n" not in refused.value.message
    assert hits == []


def test_the_allowed_demuxers_are_video_containers_only():
    assert {"mov", "matroska", "avi", "flv", "mpegts", "mpeg", "ogg", "asf", "gif", "mxf"} <= set(ALLOWED_DEMUXERS)
    assert not {"hls", "concat", "sdp", "image2", "png_pipe", "rtsp", "tty", "lavfi"} & set(ALLOWED_DEMUXERS)


def test_the_probe_refuses_a_symbolic_link_to_a_video(clip, tmp_path):
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    with pytest.raises(MediaError, match="symbolic link"):
        probe(link, limits=LIMITS)


def test_the_probe_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "fifo.mp4"
    os.mkfifo(fifo)
    with pytest.raises(MediaError, match="not a regular file"):
        probe(fifo, limits=LIMITS)


def test_the_probe_refuses_a_device_and_a_folder(tmp_path):
    with pytest.raises(MediaError, match="not a regular file"):
        probe("/dev/zero", limits=LIMITS)
    with pytest.raises(MediaError, match="not a regular file"):
        probe(tmp_path, limits=LIMITS)


@pytest.mark.parametrize("path", ["http://127.0.0.1/x.mp4", "-", "concat:/etc/passwd|/etc/hosts"])
def test_the_probe_never_hands_ffmpeg_a_url_or_a_protocol(path):
    with pytest.raises(MediaError):
        probe(path, limits=LIMITS)


# ------------------------------------------------------------------------------------------ every ffmpeg run


def test_every_ffmpeg_and_ffprobe_run_opens_only_whitelisted_local_files(clip, tmp_path, monkeypatch):
    commands: list[list[str]] = []
    real_popen = subprocess.Popen
    ffmpeg = Path(ffmpeg_program()).name  # found before Popen is watched (imageio-ffmpeg runs it with -version)

    def popen(command, *args, **kwargs):
        if "-h" not in command:  # the GIF plugin asks ffmpeg which dithers it has: no input there
            commands.append(list(command))
            assert kwargs.get("start_new_session") is True
        return real_popen(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    params = parse_params({"width": 64, "fps": 5, "boomerang": True, "reverse": True})
    convert_file(clip, tmp_path / "out.gif", params, work_dir=tmp_path, limits=LIMITS)  # the frames kept on disk
    monkeypatch.setattr("transmute.plugins.gif.FRAMES_ON_DISK_MB", 0.0)  # the source decoded twice: once for a
    monkeypatch.setattr("transmute.plugins.gif.SAMPLE_MB", 0.01)  # sample of the frames, once for all of them
    convert_file(clip, tmp_path / "out.gif", params, work_dir=tmp_path, limits=LIMITS)
    assert [Path(command[0]).name for command in commands] == ["ffprobe", ffmpeg, ffmpeg, "ffprobe", ffmpeg, ffmpeg]
    for command in commands:
        inputs = [i for i, arg in enumerate(command) if arg == "-i"] or [len(command) - 1]
        for position in inputs:
            target = command[position + 1] if command[position] == "-i" else command[position]
            assert target.startswith("file:/"), command
            options = command[:position]
            last = max(i for i, arg in enumerate(options) if arg == "-protocol_whitelist")
            assert options[last + 1] == "file", command
        if Path(command[0]).name == "ffmpeg":
            outputs = [arg for arg in command[1:] if arg.endswith((".gif", ".png"))]
            assert outputs and all(arg.startswith("file:/") for arg in outputs), command
    source_runs = [command for command in commands if f"file:{clip}" in command]
    assert len(source_runs) == 5  # the two probes, the first conversion's one decoding and the second's two
    for command in source_runs:
        assert command[command.index("-format_whitelist") + 1] == ",".join(ALLOWED_DEMUXERS)
        assert command[command.index("-max_pixels") + 1] == str(8192 * 8192)


# ------------------------------------------------------------------------------------------ limits


def test_a_source_wider_taller_or_longer_than_the_limits_is_refused(clip):
    with pytest.raises(MediaError, match=r"160x120 pixels.*up to 100x8192"):
        probe(clip, limits=LimitsConfig(max_source_width=100).for_conversion())
    with pytest.raises(MediaError, match=r"160x120 pixels.*up to 8192x100"):
        probe(clip, limits=LimitsConfig(max_source_height=100).for_conversion())
    with pytest.raises(MediaError, match=r"2 s long.*up to 1 s .*TRANSMUTE_MAX_SOURCE_DURATION"):
        probe(clip, limits=LimitsConfig(max_source_duration=1).for_conversion())
    assert probe(clip, limits=LIMITS).width == 160


def test_too_many_output_frames_are_refused_before_ffmpeg_runs():
    with pytest.raises(MediaError, match=r"30001 frames.*30000 allowed.*TRANSMUTE_MAX_OUTPUT_FRAMES"):
        check_output(frames=30_001, width=16, height=16, limits=LIMITS)
    check_output(frames=30_000, width=16, height=16, limits=LIMITS)


def test_reverse_memory_is_frames_times_output_size_times_four_bytes():
    # no ceiling on ffmpeg's memory
    limits = LimitsConfig(max_reverse_mb=1024, max_conversion_memory_mb=0).for_conversion()
    # 1000 frames of 640x480 at 4 bytes: 1171.875 MB > 1024 MB
    with pytest.raises(MediaError, match=r"1000 frames of 640x480 need about 1172 MB.*TRANSMUTE_MAX_REVERSE_MB"):
        check_output(frames=1000, width=640, height=480, buffered_frames=1000, limits=limits)
    check_output(frames=800, width=640, height=480, buffered_frames=800, limits=limits)  # 937.5 MB
    check_output(frames=1000, width=640, height=480, buffered_frames=0, limits=limits)  # nothing buffered


def test_a_reverse_buffer_must_fit_the_memory_ceiling_with_room_for_ffmpeg_itself():
    # 800 frames of 640x480: 937.5 MB, within TRANSMUTE_MAX_REVERSE_MB (1024) but not within 1536 - 768 MB.
    with pytest.raises(MediaError, match=r"need about 938 MB, more than the 768 MB ffmpeg has for them within its "
                                         r"1536 MB \(TRANSMUTE_MAX_CONVERSION_MEMORY_MB\)"):
        check_output(frames=800, width=640, height=480, buffered_frames=800, limits=LIMITS)
    check_output(frames=800, width=640, height=480, buffered_frames=800,
                 limits=LimitsConfig(max_conversion_memory_mb=2048).for_conversion())
    check_output(frames=600, width=640, height=480, buffered_frames=600, limits=LIMITS)  # 703 MB


def test_a_reverse_that_would_not_fit_in_memory_fails_before_ffmpeg_runs(clip, tmp_path, monkeypatch):
    ran: list[object] = []
    monkeypatch.setattr("transmute.plugins.gif.run_ffmpeg", lambda *args, **kwargs: ran.append(args))
    params = parse_params({"keep_original_size": True, "fps": 10, "boomerang": True})
    # 20 frames of 160x120 at 4 bytes: 1.46 MB
    with pytest.raises(MediaError, match="Reverse and boomerang hold every frame"):
        convert_file(clip, tmp_path / "out.gif", params, work_dir=tmp_path,
                     limits=LimitsConfig(max_reverse_mb=1).for_conversion())
    assert ran == []
    with pytest.raises(MediaError, match="ffmpeg wrote no GIF"):  # past the check: the first run ran (faked)
        convert_file(clip, tmp_path / "out.gif", params, work_dir=tmp_path,
                     limits=LimitsConfig(max_reverse_mb=2).for_conversion())
    assert len(ran) == 1


def test_the_cli_reads_the_limits_from_the_environment_and_fails_in_one_line(clip, tmp_path):
    env = {**os.environ, "TRANSMUTE_MAX_SOURCE_WIDTH": "100"}
    done = subprocess.run([TRANSMUTE, "convert", str(clip), "-o", str(tmp_path / "out.gif")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "up to 100x8192" in done.stderr
    assert not (tmp_path / "out.gif").exists()


# ------------------------------------------------------------------------------------------ decoding bounds


@pytest.fixture(scope="module")
def growing(folder: Path) -> Path:
    """An MPEG-TS that probes as 160x120 (2 s of it) and then carries 1600x1600 frames (1 s): two segments
    encoded apart with the same codec, joined as TS allows, by concatenating the bytes."""
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mpegts"]
    small, large = folder / "small.ts", folder / "large.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2", *x264, str(small))
    ffmpeg("-f", "lavfi", "-i", "smptebars=size=1600x1600:rate=10:duration=1", "-output_ts_offset", "2", *x264,
           str(large))
    joined = folder / "growing.ts"
    joined.write_bytes(small.read_bytes() + large.read_bytes())
    return joined


SMALL_SOURCES = {"TRANSMUTE_MAX_SOURCE_WIDTH": "1000", "TRANSMUTE_MAX_SOURCE_HEIGHT": "1000"}


def test_frames_larger_than_the_limit_further_in_the_file_fail_the_conversion(growing, tmp_path):
    limits = LimitsConfig(max_source_width=1000, max_source_height=1000).for_conversion()
    assert (probe(growing, limits=limits).width, probe(growing, limits=limits).height) == (160, 120)
    with pytest.raises(MediaError) as refused:
        convert_file(growing, tmp_path / "out.gif", parse_params({}), work_dir=tmp_path, limits=limits)
    assert refused.value.message.startswith("The video has frames of 1600x1600 pixels, larger than the 1000x1000 "
                                            "(or 1000000 pixels) transmute accepts (TRANSMUTE_MAX_SOURCE_WIDTH, ")
    assert not (tmp_path / "out.gif").exists()


@pytest.mark.parametrize("options", [{"keep_original_size": True}, {"keep_original_size": True, "boomerang": True}])
def test_frames_larger_than_probed_are_scaled_to_the_planned_size_before_they_are_buffered(growing, tmp_path,
                                                                                           options):
    convert_file(growing, tmp_path / "out.gif", parse_params(options), work_dir=tmp_path, limits=LIMITS)
    frames = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "frame=width,height", "-of", "csv=p=0",
                             str(tmp_path / "out.gif")], capture_output=True, text=True, check=True).stdout.split()
    assert frames and set(frames) == {"160,120"}


def test_a_conversion_past_the_memory_ceiling_fails_in_one_line_from_the_cli(growing, tmp_path):
    env = {**os.environ, "TRANSMUTE_MAX_CONVERSION_MEMORY_MB": "300"}
    done = subprocess.run([TRANSMUTE, "convert", str(growing), "-o", str(tmp_path / "out.gif")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "needed more than 300 MB of memory (TRANSMUTE_MAX_CONVERSION_MEMORY_MB)" in done.stderr
    assert not (tmp_path / "out.gif").exists()


def test_a_span_past_the_decode_budget_is_refused_before_ffmpeg_runs(clip, tmp_path):
    media = probe(clip, limits=LIMITS)  # 160x120, 10 fps, 2 s: 20 frames, 384000 pixels
    limits = LimitsConfig(max_decode_gigapixels=0.0003).for_conversion()
    with pytest.raises(MediaError, match=r"would decode 20 frames of 160x120 \(0.000384 gigapixels\), more than the "
                                         r"0.0003 allowed \(TRANSMUTE_MAX_DECODE_GIGAPIXELS\)"):
        check_decode(media, 2.0, limits)
    check_decode(media, 1.0, limits)
    with pytest.raises(MediaError, match="TRANSMUTE_MAX_DECODE_GIGAPIXELS"):
        convert_file(clip, tmp_path / "out.gif", parse_params({}), work_dir=tmp_path, limits=limits)
    convert_file(clip, tmp_path / "out.gif", parse_params({"end_time": 1}), work_dir=tmp_path, limits=limits)


# ------------------------------------------------------------------------------------------ the CLI


@pytest.mark.parametrize("name", DISGUISES)
def test_transmute_convert_refuses_a_playlist_in_disguise_in_one_line(disguised, canary, tmp_path, name):
    _, hits = canary
    output = tmp_path / "out.gif"
    done = subprocess.run([TRANSMUTE, "convert", str(disguised[name]), "-o", str(output)], capture_output=True,
                          text=True, timeout=60, cwd=disguised[name].parent)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("transmute: error: The file is not a video transmute can read")
    assert KIND[name] in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not output.exists()
    assert hits == []


# ------------------------------------------------------------------------------------------ the service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    data = tmp_path_factory.mktemp("hardening-data")
    with embedded_client(data, threads=2, env={"TRANSMUTE_MAX_REVERSE_MB": "1"}) as client:
        yield client, data / "tmp"


@pytest.mark.parametrize("name", DISGUISES)
def test_an_uploaded_playlist_in_disguise_is_refused_at_create_and_fetches_nothing(service, disguised, canary, name):
    client, scratch = service
    _, hits = canary
    before = client.get("/api/tasks/").json()["pagination"]["total"]
    with disguised[name].open("rb") as handle:
        response = client.post("/api/tasks/create/", files={"file": (disguised[name].name, handle, "video/mp4")})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"].startswith("The file is not a video transmute can read")  # the CLI's message
    assert KIND[name] in body["error"]
    assert body["details"] == {"field": "file"}
    assert client.get("/api/tasks/").json()["pagination"]["total"] == before
    assert hits == []
    assert list(scratch.iterdir()) == []


def test_the_worker_scratch_folder_is_empty_after_a_done_and_a_failed_task(service, clip, disguised):
    client, scratch = service
    done = wait_finished(client, upload(client, clip, width=32, fps=5)["task_id"])
    assert done["status"] == "done"
    assert list(scratch.iterdir()) == []
    # past the reverse memory limit the fixture sets: the worker fails it after preparing its folder
    failed = wait_finished(client, upload(client, clip, keep_original_size="true", reverse="true")["task_id"])
    assert failed["status"] == "failed"
    assert list(scratch.iterdir()) == []


def test_the_service_applies_its_reverse_memory_limit_and_says_so(service, clip):
    client, scratch = service
    created = upload(client, clip, keep_original_size="true", fps=10, reverse="true")
    status = wait_finished(client, created["task_id"])
    assert status["status"] == "failed"
    assert status["error_message"].startswith("Reverse and boomerang hold every frame in memory: 20 frames of 160x120")
    assert "1 MB allowed (TRANSMUTE_MAX_REVERSE_MB)" in status["error_message"]
    assert list(scratch.iterdir()) == []


def test_a_task_whose_frames_grow_past_the_limit_fails_with_a_clear_message(growing, tmp_path):
    with embedded_client(tmp_path / "data", threads=1, env=SMALL_SOURCES) as client:
        status = wait_finished(client, upload(client, growing)["task_id"])
    assert status["status"] == "failed"
    assert status["error_message"].startswith("The video has frames of 1600x1600 pixels, larger than the 1000x1000")


def test_a_conversion_past_the_timeout_fails_its_task_with_a_clear_message(tmp_path):
    heavy = make_clip(tmp_path / "heavy.mp4", "testsrc2=size=1280x720:rate=25:duration=8")
    data = tmp_path / "data"
    with embedded_client(data, threads=1, env={"TRANSMUTE_CONVERSION_TIMEOUT": "1"}) as client:
        created = upload(client, heavy, keep_original_size="true", fps=50, high_quality="true")
        status = wait_finished(client, created["task_id"])
        assert status["status"] == "failed"
        assert status["error_message"] == ("The conversion took longer than the 1 s allowed and was stopped; try a "
                                           "shorter span, a smaller width or a lower fps.")
        assert live_ffmpeg_children(os.getpid()) == [], "the stopped conversion left its ffmpeg running"
        assert list((data / "tmp").iterdir()) == []


# ------------------------------------------------------------------------------------------ orphans


def test_ffmpeg_runs_with_a_preexec_that_ties_it_to_its_parent_on_linux():
    options = child_options()
    assert options["start_new_session"] is True
    assert callable(options.get("preexec_fn")) == sys.platform.startswith("linux")


def test_ffmpeg_dies_with_its_worker_when_the_worker_is_killed(tmp_path):
    marker = f"transmute-orphan-{uuid.uuid4().hex}"
    script = textwrap.dedent(f"""
        from transmute.media.run import run_ffmpeg
        from transmute.settings import LimitsConfig
        run_ffmpeg(["-re", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=60", "-f", "null",
                    "-y", {str(tmp_path / (marker + ".nut"))!r}], expected_duration=60,
                   limits=LimitsConfig().for_conversion())
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    try:
        def started() -> list[int]:
            assert worker.poll() is None, "the worker exited before its ffmpeg started"
            return ffmpeg_pids_with(marker)

        pids = wait_for(started, 20, "ffmpeg to start", interval=0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=5)
        # The kernel ends it at once (PR_SET_PDEATHSIG); its run would last 60 s (-re) if it outlived the parent.
        wait_for(lambda: not any(is_alive(pid) for pid in pids), 20, "ffmpeg to end with its killed parent",
                 interval=0.02)
    finally:
        worker.kill()
        for pid in ffmpeg_pids_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_run_ffmpeg_still_converts_with_the_preexec_in_place(tmp_path):
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=32x24:rate=5:duration=1", "-f", "null", "-"],
               expected_duration=1, limits=LIMITS)
