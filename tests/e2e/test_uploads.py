"""Uploads over real HTTP: streamed to storage (the server's memory does not grow with the file), and a
JSON 413 past TRANSMUTE_MAX_UPLOAD_MB, as curl sees it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.media import ffmpeg

MB = 1024 * 1024


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def curl_upload(url: str, path: Path) -> tuple[int, dict]:
    done = subprocess.run(["curl", "-sS", "-F", f"file=@{path}", "-w", "\n%{http_code}", f"{url}/api/tasks/create/"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    body, _, code = done.stdout.rpartition("\n")
    return int(code), json.loads(body)


def sparse_file(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def raw_video(path: Path, size: int) -> Path:
    """A real video of exactly `size` bytes (uncompressed frames in Matroska, padded), so the create's probe
    takes it: lavfi frames, nothing binary committed."""
    frame = 320 * 240 * 3 // 2
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25,trim=end_frame={size // frame - 8}",
           "-c:v", "rawvideo", "-pix_fmt", "yuv420p", str(path))
    with path.open("r+b") as handle:
        handle.truncate(size)  # trailing zeros after the last cluster: ffprobe reads the file all the same
    return path


def test_a_large_upload_is_streamed_to_storage_not_held_in_memory(start_server, tmp_path: Path) -> None:
    server = start_server(env={"TRANSMUTE_MAX_UPLOAD_MB": "100"})
    size = 80 * MB
    before = peak_rss(server.process.pid)
    code, body = curl_upload(server.url, raw_video(tmp_path / "large.mkv", size))
    assert code == 200, body
    grown = peak_rss(server.process.pid) - before
    assert grown < 30 * MB, f"peak memory grew by {grown / MB:.0f} MB for an {size / MB:.0f} MB upload"
    sources = list((server.data_dir / "objects" / "sources").iterdir())
    assert [path.stat().st_size for path in sources] == [size]
    assert not any(name.startswith(".partial") for name in os.listdir(server.data_dir / "objects" / "sources"))
    server.stop()


def test_an_upload_past_the_limit_is_a_413_json_error_over_http(start_server, tmp_path: Path) -> None:
    server = start_server(env={"TRANSMUTE_MAX_UPLOAD_MB": "1"})
    for size in (MB + 1, 3 * MB):
        code, body = curl_upload(server.url, sparse_file(tmp_path / f"big-{size}.mp4", size))
        assert code == 413
        assert body["success"] is False and "1 MB" in body["error"]
    code, body = curl_upload(server.url, sparse_file(tmp_path / "fits.mp4", MB))
    assert code == 400 and body["details"] == {"field": "file"}, body  # past the size check; zeros are no video
    server.stop()
