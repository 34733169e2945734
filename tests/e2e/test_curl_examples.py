"""The spec's own curl examples, run with real curl and bash against `transmute serve`.

Each example is kept as the spec writes it, then adapted in the fewest ways that let it run here
(see `adapt`): the host is the test server, the example URL is a local HTTP server, `sleep 5` is
`sleep 0.2`, and `-O` becomes `-OJ`: curl before 8.10 cannot name a file after a URL that ends with a
slash (`curl -O .../download/` fails with exit 23), so the file is named from Content-Disposition,
which the server sends for that purpose.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.media import E2EMedia
from tests.support.servers import Server

CREATE_MULTIPART = """
curl -X POST http://your-domain.com/api/tasks/create/ \\
  -F "file=@video.mp4" \\
  -F "format=gif" \\
  -F "width=480" \\
  -F "fps=15" \\
  -F "start_time=0" \\
  -F "end_time=30" \\
  -F "quality=medium" \\
  -F "speed=1.0" \\
  -F "grayscale=false" \\
  -F "reverse=false" \\
  -F "boomerang=false"
"""

CREATE_JSON = """
curl -X POST http://your-domain.com/api/tasks/create/ \\
  -H "Content-Type: application/json" \\
  -d '{
    "url": "http://example.com/video.mp4",
    "format": "gif",
    "width": 480,
    "fps": 15,
    "start_time": 0,
    "end_time": 30,
    "quality": "medium",
    "speed": 1.0,
    "grayscale": false,
    "reverse": false,
    "boomerang": false
  }'
"""

FULL_CYCLE = """
# 1. Создание задачи
TASK_ID=$(curl -X POST http://your-domain.com/api/tasks/create/ \\
  -F "file=@video.mp4" \\
  -F "format=gif" \\
  -F "width=480" | jq -r '.task_id')

# 2. Проверка статуса
curl http://your-domain.com/api/tasks/$TASK_ID/status/

# 3. Ожидание завершения и скачивание
while true; do
  STATUS=$(curl -s http://your-domain.com/api/tasks/$TASK_ID/status/ | jq -r '.status')
  if [ "$STATUS" = "done" ]; then
    curl -O http://your-domain.com/api/tasks/$TASK_ID/download/
    break
  elif [ "$STATUS" = "failed" ]; then
    echo "Task failed"
    break
  fi
  sleep 5
done
"""

STATUS = "curl http://your-domain.com/api/tasks/123/status/"
RESULT = "curl http://your-domain.com/api/tasks/123/result/"
LIST_BASIC = "curl http://your-domain.com/api/tasks/"
LIST_WITH_PARAMETERS = 'curl "http://your-domain.com/api/tasks/?page=1&per_page=10&status=done&format=gif&order=-created_at"'
DOWNLOAD = "curl -O http://your-domain.com/api/tasks/123/download/"

BATCH_ALL_GIFS = """
# Получить все задачи со статусом done и форматом gif
TASK_IDS=$(curl -s "http://your-domain.com/api/tasks/?status=done&format=gif&per_page=50" | \\
  jq -r '.tasks[].task_id' | tr '\\n' ',' | sed 's/,$//')

# Скачать ZIP архив
curl -O "http://your-domain.com/api/tasks/batch-download/?task_ids=$TASK_IDS"
"""

BATCH_GET = 'curl -O "http://your-domain.com/api/tasks/batch-download/?task_ids=1,2,3,4"'
BATCH_POST = """
curl -X POST http://your-domain.com/api/tasks/batch-download/ \\
  -H "Content-Type: application/json" \\
  -d '{"task_ids": [1, 2, 3, 4]}' \\
  -O
"""


class Shell:
    """Runs the spec's examples in one folder (where video.mp4 is) against one server."""

    def __init__(self, server: Server, folder: Path, clip_url: str) -> None:
        self.server, self.folder, self.clip_url = server, folder, clip_url

    def adapt(self, script: str, *, task_id: str | None = None) -> str:
        script = script.replace("http://example.com/video.mp4", self.clip_url)
        script = script.replace("http://your-domain.com", self.server.url)
        script = script.replace("sleep 5", "sleep 0.2")
        script = re.sub(r"(?<=\s)-O(?=\s|$)", "-OJ", script)
        if task_id is not None:
            script = script.replace("/123/", f"/{task_id}/")
        return script

    def run(self, script: str, *, task_id: str | None = None, extra: str = "") -> subprocess.CompletedProcess:
        command = self.adapt(script, task_id=task_id).rstrip() + extra
        done = subprocess.run(["bash", "-c", command], cwd=self.folder, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done

    def json(self, script: str, **kwargs) -> dict:
        return json.loads(self.run(script, **kwargs).stdout)


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory, e2e_media: E2EMedia, clip_server: str) -> Iterator[Shell]:
    base = tmp_path_factory.mktemp("curl-examples")
    folder = base / "work"
    folder.mkdir()
    shutil.copy(e2e_media.video, folder / "video.mp4")
    server = Server(data_dir=base / "data", log_path=base / "serve.log")
    server.start()
    try:
        yield Shell(server, folder, f"{clip_server}/video.mp4")
    finally:
        server.kill_group()


@pytest.fixture(scope="module")
def created(shell: Shell) -> dict[str, dict]:
    """The two create examples (tasks 1 and 2), converted."""
    answers = {"multipart": shell.json(CREATE_MULTIPART), "json": shell.json(CREATE_JSON)}
    with httpx.Client(timeout=30) as client:
        for answer in answers.values():
            assert shell.server.wait_finished(client, answer["task_id"])["status"] == "done"
    return answers


@pytest.fixture(scope="module")
def full_cycle(shell: Shell, created: dict[str, dict]) -> subprocess.CompletedProcess:
    """The full-cycle script, run once after the create examples (so its task is 3)."""
    return shell.run(FULL_CYCLE)


def test_the_create_examples_answer_as_the_spec_shows(created: dict[str, dict]) -> None:
    assert [answer["task_id"] for answer in created.values()] == ["1", "2"]
    for answer in created.values():
        task_id = answer["task_id"]
        assert answer == {
            "success": True, "task_id": task_id, "status": "queued",
            "message": "Задача создана и поставлена в очередь на выполнение",
            "api_urls": {"status": f"/api/tasks/{task_id}/status/", "result": f"/api/tasks/{task_id}/result/",
                         "download": f"/api/tasks/{task_id}/download/"},
        }


def test_the_status_and_result_examples_describe_the_converted_task(shell: Shell, created: dict[str, dict]) -> None:
    status = shell.json(STATUS, task_id="1")
    assert status["status"] == "done" and status["progress"] == 100
    assert status["metadata"]["source_type"] == "file"
    assert status["metadata"]["original_filename"] == "video.mp4"
    assert status["metadata"]["conversion_params"]["width"] == 480
    assert shell.json(STATUS, task_id="2")["metadata"]["source_type"] == "url"
    result = shell.json(RESULT, task_id="1")
    assert result["status"] == "done"
    assert result["result"]["output_url"] == "/media/results/task_1_result.gif"
    assert result["result"]["download_url"] == "/api/tasks/1/download/"


def test_the_download_example_saves_the_gif(shell: Shell, created: dict[str, dict]) -> None:
    shell.run(DOWNLOAD, task_id="2")
    saved = shell.folder / "task_2_result.gif"
    assert saved.read_bytes() == httpx.get(f"{shell.server.url}/api/tasks/2/download/").content
    assert saved.read_bytes()[:6] == b"GIF89a"


def test_the_full_cycle_script_creates_waits_and_downloads(
    shell: Shell, full_cycle: subprocess.CompletedProcess
) -> None:
    done = full_cycle
    assert "Task failed" not in done.stdout
    first_status = json.loads(done.stdout)  # step 2 prints the status, the download goes to a file
    assert first_status["task_id"] == "3"
    assert first_status["status"] in ("queued", "running", "done")
    saved = shell.folder / "task_3_result.gif"
    assert saved.read_bytes() == httpx.get(f"{shell.server.url}/api/tasks/3/download/").content


def test_the_list_examples_answer_with_tasks_and_pagination(shell: Shell, created: dict[str, dict]) -> None:
    listing = shell.json(LIST_BASIC)
    assert listing["success"] is True
    assert listing["pagination"]["per_page"] == 20
    assert {task["task_id"] for task in listing["tasks"]} >= {"1", "2"}
    filtered = shell.json(LIST_WITH_PARAMETERS)
    assert filtered["pagination"]["page"] == 1 and filtered["pagination"]["per_page"] == 10
    assert filtered["tasks"] and all(task["status"] == "done" and task["target_format"] == "gif"
                                     for task in filtered["tasks"])
    ids = [int(task["task_id"]) for task in filtered["tasks"]]
    assert ids == sorted(ids, reverse=True)


def zip_named_in(headers: str, folder: Path) -> tuple[dict[str, str], zipfile.ZipFile]:
    """The response headers curl printed (-D -), and the ZIP it saved under the Content-Disposition name."""
    fields = {name.strip().lower(): value.strip() for name, _, value in
              (line.partition(":") for line in headers.splitlines() if ":" in line)}
    name = re.search(r'filename="([^"]+)"', fields["content-disposition"]).group(1)
    return fields, zipfile.ZipFile(io.BytesIO((folder / name).read_bytes()))


def test_the_batch_script_zips_every_done_gif(shell: Shell, full_cycle: subprocess.CompletedProcess) -> None:
    done_gifs = httpx.get(f"{shell.server.url}/api/tasks/", params={"status": "done", "format": "gif",
                                                                   "per_page": 50}).json()["tasks"]
    headers, archive = zip_named_in(shell.run(BATCH_ALL_GIFS, extra=" -D -").stdout, shell.folder)
    assert headers["content-type"] == "application/zip"
    assert headers["x-total-tasks"] == headers["x-successful-tasks"] == headers["x-files-count"] == str(len(done_gifs))
    assert sorted(archive.namelist()) == sorted(f"task_{task['task_id']}_result.gif" for task in done_gifs)


@pytest.mark.parametrize("example", [BATCH_GET, BATCH_POST], ids=["GET", "POST"])
def test_the_batch_examples_zip_tasks_1_to_4_and_count_the_missing_one(
    shell: Shell, full_cycle: subprocess.CompletedProcess, example: str
) -> None:
    headers, archive = zip_named_in(shell.run(example, extra=" -D -").stdout, shell.folder)
    assert (headers["x-total-tasks"], headers["x-successful-tasks"], headers["x-files-count"]) == ("4", "3", "3")
    assert headers["content-disposition"].startswith("attachment;")
    assert sorted(archive.namelist()) == ["task_1_result.gif", "task_2_result.gif", "task_3_result.gif"]
    for task_id in ("1", "2", "3"):
        expected = httpx.get(f"{shell.server.url}/api/tasks/{task_id}/download/").content
        assert archive.read(f"task_{task_id}_result.gif") == expected
