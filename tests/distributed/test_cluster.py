"""Distributed mode end to end: `transmute api` and `transmute worker` processes on RabbitMQ, PostgreSQL and S3."""

from __future__ import annotations

import io
import subprocess
import threading
import zipfile

import httpx
import pytest

from tests.support.cluster import Cluster, rabbitmq_up
from tests.support.gifs import is_gif
from tests.support.tasks import create_upload, create_url, wait_all_finished
from tests.support.waiting import wait_for


def test_twenty_mixed_tasks_on_two_workers_finish_and_an_api_restart_in_the_middle_loses_none(
    cluster: Cluster, cluster_clips, clip_server
) -> None:
    cluster.start_worker(processes=2)
    cluster.start_api(workers=2)
    ids: list[str] = []
    with cluster.client() as client:
        for number in range(20):
            if number == 10:
                # The gateway goes away while tasks are converting and their events keep coming.
                cluster.stop_api()
                cluster.start_api(workers=2)
            params = {"width": 64 + 16 * (number % 4), "fps": 5 + number % 3}
            if number % 2:
                response = create_url(client, f"{clip_server}/{'one' if number % 4 == 1 else 'two'}.mp4", **params)
            else:
                response = create_upload(client, cluster_clips["one" if number % 4 == 0 else "two"], **params)
            assert response.status_code == 200, response.text
            ids.append(response.json()["task_id"])
        assert len(set(ids)) == 20

        finished = wait_all_finished(client, ids, timeout=90)
        assert {task_id: state["status"] for task_id, state in finished.items()} == dict.fromkeys(ids, "done")

        listing = client.get("/api/tasks/", params={"per_page": 100}).json()
        assert listing["pagination"]["total"] == 20
        assert sorted(task["task_id"] for task in listing["tasks"]) == sorted(ids)
        assert client.get("/api/tasks/", params={"status": "done", "format": "gif"}).json()["pagination"]["total"] == 20
        assert client.get("/api/tasks/", params={"status": "queued"}).json()["pagination"]["total"] == 0
        page = client.get("/api/tasks/", params={"per_page": 8, "page": 3, "order": "created_at"}).json()
        assert [task["task_id"] for task in page["tasks"]] == ids[16:]

        downloads = {}
        for task_id in ids:
            response = client.get(f"/api/tasks/{task_id}/download/")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("image/gif")
            assert is_gif(response.content)
            downloads[task_id] = response.content
            result = client.get(f"/api/tasks/{task_id}/result/").json()["result"]
            assert result["output_url"] == f"/media/results/task_{task_id}_result.gif"
            assert client.get(result["output_url"]).content == response.content

        archive = client.get("/api/tasks/batch-download/", params={"task_ids": ",".join(ids)})
        assert archive.status_code == 200
        assert archive.headers["x-successful-tasks"] == "20"
        with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
            assert {name: zipped.read(name) for name in zipped.namelist()} == {
                f"task_{task_id}_result.gif": data for task_id, data in downloads.items()
            }
    assert cluster.objects("results/") == sorted(f"results/task_{task_id}_result.gif" for task_id in ids)
    assert cluster.objects("attempts/") == []


@pytest.mark.serial
def test_every_task_the_api_accepted_while_rabbitmq_restarted_finishes(
    cluster: Cluster, cluster_clips, clip_server
) -> None:
    cluster.start_worker(threads=2)
    cluster.start_api()
    accepted: list[str] = []
    refused: list[int] = []
    stop = threading.Event()

    def keep_creating() -> None:
        with cluster.client() as client:
            number = 0
            while not stop.is_set():
                number += 1
                try:
                    response = create_url(client, f"{clip_server}/one.mp4", width=48, fps=5)
                except httpx.HTTPError:
                    refused.append(-1)
                    continue
                if response.status_code == 200:
                    accepted.append(response.json()["task_id"])
                else:
                    refused.append(response.status_code)
                stop.wait(0.1)

    creator = threading.Thread(target=keep_creating)
    creator.start()
    try:
        wait_for(lambda: len(accepted) >= 3, 30, "the first tasks")
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True, timeout=120)
        during = len(accepted)
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True, timeout=120)
        wait_for(rabbitmq_up, 60, "RabbitMQ")
        wait_for(lambda: len(accepted) >= during + 3, 60, "tasks accepted after the restart")
    finally:
        stop.set()
        creator.join()
    assert len(accepted) > during > 0
    with cluster.client() as client:
        finished = wait_all_finished(client, accepted, timeout=90)
    assert {task_id: state["status"] for task_id, state in finished.items()} == dict.fromkeys(accepted, "done")
