"""`transmute serve` as a real process: the whole task API over HTTP, and a restart that loses no task."""

from __future__ import annotations

import io
import zipfile

import httpx

from tests.support.media import E2EMedia
from tests.support.servers import TASK_DEADLINE
from tests.support.tasks import queue_upload
from tests.support.waiting import wait_for


def test_serve_answers_the_whole_task_api_over_http(start_server, e2e_media: E2EMedia, clip_server: str) -> None:
    server = start_server()
    with httpx.Client(timeout=30) as client:
        uploaded = queue_upload(client, e2e_media.video, base=server.url, width=64)
        from_url = client.post(f"{server.url}/api/tasks/create", json={"url": f"{clip_server}/video.mp4", "fps": 5})
        assert from_url.status_code == 200, from_url.text
        from_url_id = from_url.json()["task_id"]
        for task_id in (uploaded, from_url_id):
            assert server.wait_finished(client, task_id)["status"] == "done"

        result = client.get(f"{server.url}/api/tasks/{uploaded}/result/").json()["result"]
        download = client.get(f"{server.url}{result['download_url']}")
        assert download.status_code == 200
        assert download.headers["content-type"] == "image/gif"
        assert download.headers["content-length"] == str(result["file_size"]) == str(len(download.content))
        assert f'filename="{result["filename"]}"' in download.headers["content-disposition"]
        assert client.get(f"{server.url}{result['output_url']}").content == download.content

        listing = client.get(f"{server.url}/api/tasks/", params={"status": "done", "format": "gif"}).json()
        assert {task["task_id"] for task in listing["tasks"]} == {uploaded, from_url_id}
        assert listing["pagination"]["total"] == 2

        batch = client.post(f"{server.url}/api/tasks/batch-download/", json={"task_ids": [uploaded, from_url_id, 99]})
        assert batch.status_code == 200
        assert (batch.headers["x-total-tasks"], batch.headers["x-successful-tasks"], batch.headers["x-files-count"]) \
            == ("3", "2", "2")
        with zipfile.ZipFile(io.BytesIO(batch.content)) as archive:
            assert archive.read(result["filename"]) == download.content

        for response, status in ((client.get(f"{server.url}/api/tasks/99/status/"), 404),
                                 (client.delete(f"{server.url}/api/tasks/"), 405),
                                 (client.post(f"{server.url}/api/tasks/create/", data={"width": "9"}), 400)):
            assert response.status_code == status
            assert response.json()["success"] is False
    server.stop()


def test_a_restart_in_the_middle_of_a_conversion_loses_no_task(start_server, e2e_media: E2EMedia) -> None:
    server = start_server(workers=1)
    with httpx.Client(timeout=30) as client:
        finished = queue_upload(client, e2e_media.video, base=server.url, width=32)
        assert server.wait_finished(client, finished)["status"] == "done"
        long_task = queue_upload(client, e2e_media.long, base=server.url, keep_original_size="true",
                                 high_quality="true", fps=25)
        behind = queue_upload(client, e2e_media.video, base=server.url, width=48)  # waits for the one worker thread

        def under_way() -> dict | None:
            status = client.get(f"{server.url}/api/tasks/{long_task}/status/").json()
            assert status["status"] in ("queued", "running"), status
            return status if status["status"] == "running" and status["progress"] > 0 else None

        status = wait_for(under_way, TASK_DEADLINE, lambda: f"the conversion to be under way:\n{server.log()}",
                          interval=0.05)
        interrupted_at = status["progress"]
        assert 0 < interrupted_at < 100

        server.stop()  # SIGTERM: the running conversion is cut short; its task stays unfinished

        server.start()  # the same data folder and port
        after = client.get(f"{server.url}/api/tasks/{long_task}/status/").json()
        assert after["status"] in ("queued", "running"), after
        assert client.get(f"{server.url}/api/tasks/{finished}/status/").json()["status"] == "done"

        final = server.wait_finished(client, long_task)
        assert final["status"] == "done", final
        assert final["progress"] == 100
        assert server.wait_finished(client, behind)["status"] == "done"
        download = client.get(f"{server.url}/api/tasks/{long_task}/download/")
        assert download.status_code == 200 and download.content[:6] == b"GIF89a"
        assert "resumed 2 unfinished task(s)" in server.log(tail=None)
    server.stop()
