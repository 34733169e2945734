"""`transmute submit`, the real command, against a real `transmute serve`: files and URLs, several at once,
results downloaded, a summary table, exit 1 when any failed, TRANSMUTE_SERVER as the default server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.servers import TRANSMUTE, KeyedServer, Server

RUN_DEADLINE = 180.0


def submit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `transmute submit ARGS` and return what it did (its output as text)."""
    clean = {name: value for name, value in os.environ.items() if name not in ("TRANSMUTE_SERVER", "TRANSMUTE_API_KEY")}
    return subprocess.run([str(TRANSMUTE), "submit", *args], capture_output=True, text=True, timeout=RUN_DEADLINE,
                          env=clean | {"COLUMNS": "200"} | (env or {}), check=False)


def rows(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by task id: [input, task, status, result]."""
    found = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│┃").split("│")]
        if len(cells) == 4 and cells[1].isdigit():
            found[cells[1]] = cells
    return found


def test_files_and_a_url_are_converted_at_once_and_their_results_downloaded(server: Server, clips, clip_urls,
                                                                           tmp_path: Path):
    out = tmp_path / "out"
    done = submit(str(clips["small"]), str(clips["ramp"]), clip_urls["small"], "--server", server.url,
                  "-p", "width=32", "-p", "fps=5", "--jobs", "2", "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(done.stdout)
    assert [row[2] for row in table.values()] == ["done"] * 3, done.stdout
    written = sorted(path.name for path in out.iterdir())
    assert written[:2] == ["ramp.gif", "small.gif"] and len(written) == 3
    assert all((out / name).read_bytes()[:6] == b"GIF89a" for name in written)
    assert {row[3] for row in table.values()} == {str(out / name) for name in written}


def test_a_failed_conversion_is_in_the_table_and_makes_the_exit_status_1(server: Server, clips, clip_urls):
    done = submit(str(clips["small"]), clip_urls["text"], "--format", "png", "--wait", "-p", "width=32",
                  env={"TRANSMUTE_SERVER": server.url})
    assert done.returncode == 1, done.stdout + done.stderr
    statuses = sorted(row[2] for row in rows(done.stdout).values())
    assert statuses == ["done", "failed"], done.stdout
    failed = next(row for row in rows(done.stdout).values() if row[2] == "failed")
    assert failed[3], "the failed row says why"


def test_without_wait_the_tasks_are_queued_and_the_command_ends(server: Server, clips):
    done = submit(str(clips["small"]), "--server", server.url, "-p", "width=32")
    assert done.returncode == 0, done.stderr
    [row] = rows(done.stdout).values()
    assert row[2] in ("queued", "running", "done")


def test_an_option_the_server_refuses_is_an_error_row_in_the_servers_words(server: Server, clips):
    done = submit(str(clips["small"]), "--server", server.url, "-p", "width=9", "--wait")
    assert done.returncode == 1
    assert "error" in done.stdout and "width" in done.stdout


def test_without_a_server_it_says_how_to_name_one(clips):
    done = submit(str(clips["small"]))
    assert done.returncode == 2
    assert "TRANSMUTE_SERVER" in done.stderr and "Traceback" not in done.stderr


def test_an_input_that_is_neither_a_file_nor_a_url_is_a_usage_error(server: Server, tmp_path: Path):
    done = submit(str(tmp_path / "missing.mp4"), "--server", server.url)
    assert done.returncode == 2 and "missing.mp4" in done.stderr


def test_on_a_terminal_it_shows_a_bar_for_the_upload_and_the_conversion(server: Server, clips):
    done = submit(str(clips["small"]), "--server", server.url, "-p", "width=32", "--wait",
                  env={"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"})
    assert done.returncode == 0, done.stderr
    assert "small.mp4: upload" in done.stderr and "small.mp4: done" in done.stderr and "100%" in done.stderr


def test_the_api_key_comes_from_transmute_api_key(clips, tmp_path: Path):
    key = "submit-test-key-0123456789"
    server = KeyedServer(data_dir=tmp_path / "data", log_path=tmp_path / "serve.log", env={"TRANSMUTE_API_KEYS": key})
    try:
        server.start()
        refused = submit(str(clips["small"]), "--server", server.url)
        assert refused.returncode == 1 and "API key" in refused.stdout
        done = submit(str(clips["small"]), "--server", server.url, env={"TRANSMUTE_API_KEY": key})
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        server.kill_group()
