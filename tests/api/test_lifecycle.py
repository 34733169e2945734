"""Cancel, delete and retry through the API of the embedded app: statuses, 409/404 bodies, ffmpeg gone, and the
task's files gone from the data folder."""

from __future__ import annotations

import os
from pathlib import Path

from litestar.testing import TestClient

from tests.support.embedded import embedded_client
from tests.support.lifecycle import ALICE, BOB, SLOW, stored
from tests.support.metrics import sample
from tests.support.processes import live_ffmpeg_children
from tests.support.tasks import queue_upload, status, wait_finished
from tests.support.waiting import wait_for

CANCEL_WITHIN = 2.0
"""The issue's bound on stopping a running task."""


def scratch(data_dir: Path) -> list[str]:
    """What conversions left in the scratch folder."""
    return sorted(path.name for path in (data_dir / "tmp").iterdir())


def start_long(app: TestClient, clip: Path) -> str:
    """A task converting the long clip, once its ffmpeg runs."""
    task_id = queue_upload(app, clip, **SLOW)
    wait_for(lambda: status(app, task_id)["status"] == "running" and live_ffmpeg_children(os.getpid()), 30,
             "the long conversion's ffmpeg to run")
    return task_id


def test_cancel_stops_a_running_task_and_a_queued_one_never_starts(app, data_dir, clips):
    # The metrics are the process's: other tests of this session count in them too.
    cancelled_before = sample(app.get("/metrics").text, "transmute_conversions_total", format="gif",
                              outcome="cancelled")
    running = start_long(app, clips["long"])
    waiting = queue_upload(app, clips["short"], width=32)

    response = app.post(f"/api/tasks/{waiting}/cancel/")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert status(app, waiting)["status"] == "cancelled"

    response = app.post(f"/api/tasks/{running}/cancel/")
    assert response.status_code == 200, response.text
    wait_for(lambda: not live_ffmpeg_children(os.getpid()), CANCEL_WITHIN, "the cancelled ffmpeg to end")
    wait_for(lambda: scratch(data_dir) == [], CANCEL_WITHIN, lambda: f"the scratch to go: {scratch(data_dir)}")
    cancelled = status(app, running)
    assert cancelled["status"] == "cancelled" and cancelled["is_finished"] and not cancelled["is_active"]
    assert cancelled["error_message"] == ""

    # A task queued after both runs once the thread is free: by then the cancelled one's message was taken.
    assert wait_finished(app, queue_upload(app, clips["short"], width=32))["status"] == "done"
    skipped = status(app, waiting)
    assert skipped["status"] == "cancelled" and skipped["started_at"] is None and skipped["progress"] == 0
    assert status(app, running)["status"] == "cancelled"
    assert not [key for key in stored(data_dir) if key.startswith("results/")
                and (f"task_{running}_" in key or f"task_{waiting}_" in key)]

    for task_id in (running, waiting):
        for route in ("result", "download"):
            response = app.get(f"/api/tasks/{task_id}/{route}/")
            assert response.status_code == 409, response.text
            assert response.json()["success"] is False and "cancelled" in response.json()["error"]

    # Both runs are counted as cancelled: the one stopped, the one skipped.
    metrics = app.get("/metrics").text
    assert sample(metrics, "transmute_conversions_total", format="gif", outcome="cancelled") == cancelled_before + 2

    listed = app.get("/api/tasks/", params={"status": "cancelled"}).json()["tasks"]
    assert sorted(task["task_id"] for task in listed) == sorted([running, waiting])
    ordered = [task["status"] for task in app.get("/api/tasks/", params={"order": "-status"}).json()["tasks"]]
    assert ordered == ["cancelled", "cancelled", "done"]


def test_cancel_of_a_finished_task_is_a_409_and_of_an_unknown_one_a_404(app, clips):
    task_id = queue_upload(app, clips["short"], width=32)
    assert wait_finished(app, task_id)["status"] == "done"
    response = app.post(f"/api/tasks/{task_id}/cancel/")
    assert response.status_code == 409
    body = response.json()
    assert body["success"] is False and body["status"] == "done" and "only a queued or running" in body["error"]
    assert status(app, task_id)["status"] == "done"
    response = app.post("/api/tasks/999999/cancel/")
    assert response.status_code == 404 and response.json()["success"] is False


def test_delete_removes_the_record_the_source_and_the_result(app, data_dir, clips):
    task_id = queue_upload(app, clips["short"], width=32)
    done = wait_finished(app, task_id)
    assert done["status"] == "done"
    output_url = app.get(f"/api/tasks/{task_id}/result/").json()["result"]["output_url"]
    assert app.get(output_url).status_code == 200
    assert any(key.startswith("sources/") for key in stored(data_dir))
    assert any(key.startswith("results/") for key in stored(data_dir))

    response = app.delete(f"/api/tasks/{task_id}/")
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True

    for url in (f"/api/tasks/{task_id}/status/", f"/api/tasks/{task_id}/result/",
                f"/api/tasks/{task_id}/download/", output_url):
        response = app.get(url)
        assert response.status_code == 404, (url, response.text)
        assert response.json()["success"] is False
    assert stored(data_dir) == []
    root = data_dir / "objects"
    assert [path for path in root.rglob("*") if path.is_dir() and path.parent != root] == []  # no task folder
    assert app.delete(f"/api/tasks/{task_id}/").status_code == 404


def test_delete_of_a_running_task_stops_it_and_leaves_nothing(app, data_dir, clips):
    task_id = start_long(app, clips["long"])
    response = app.delete(f"/api/tasks/{task_id}/")
    assert response.status_code == 200, response.text
    wait_for(lambda: not live_ffmpeg_children(os.getpid()), CANCEL_WITHIN, "the deleted task's ffmpeg to end")
    assert app.get(f"/api/tasks/{task_id}/status/").status_code == 404
    wait_for(lambda: scratch(data_dir) == [], CANCEL_WITHIN, lambda: f"the scratch to go: {scratch(data_dir)}")
    assert stored(data_dir) == []


def test_retry_queues_a_cancelled_task_again_as_a_new_attempt(app, data_dir, clips):
    blocker = start_long(app, clips["long"])
    task_id = queue_upload(app, clips["short"], width=32)
    assert status(app, task_id)["attempt"] == 1
    assert app.post(f"/api/tasks/{task_id}/cancel/").json()["status"] == "cancelled"

    response = app.post(f"/api/tasks/{task_id}/retry/")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued" and response.json()["attempt"] == 2
    response = app.post(f"/api/tasks/{task_id}/retry/")  # queued: not again
    assert response.status_code == 409 and response.json()["status"] == "queued"

    app.post(f"/api/tasks/{blocker}/cancel/")
    done = wait_finished(app, task_id)
    assert done["status"] == "done" and done["attempt"] == 2, done
    assert done["metadata"]["conversion_params"]["width"] == 32
    download = app.get(f"/api/tasks/{task_id}/download/")
    assert download.status_code == 200 and download.content[:6] in (b"GIF87a", b"GIF89a")

    response = app.post(f"/api/tasks/{task_id}/retry/")  # done: not again
    assert response.status_code == 409
    assert response.json()["success"] is False and response.json()["status"] == "done"


def test_retry_of_a_failed_task_runs_it_again(app, http_source):
    # A URL whose body is not a video: the task fails in the worker, and fails again when retried.
    response = app.post("/api/tasks/create/", json={"url": f"{http_source}/notes.mp4"})
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    failed = wait_finished(app, task_id)
    assert failed["status"] == "failed" and failed["attempt"] == 1, failed
    response = app.post(f"/api/tasks/{task_id}/retry/")
    assert response.status_code == 200, response.text
    assert response.json()["attempt"] == 2 and response.json()["error_message"] == ""
    again = wait_finished(app, task_id)
    assert again["status"] == "failed" and again["attempt"] == 2 and again["error_message"] == failed["error_message"]


def test_another_keys_task_is_404_for_cancel_delete_and_retry(tmp_path, clips):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{ALICE}\n{BOB}\n")
    with embedded_client(tmp_path / "data", env={"TRANSMUTE_API_KEYS": f"@{keys}"}) as client:
        with clips["short"].open("rb") as handle:
            created = client.post("/api/tasks/create/", files={"file": ("a.mp4", handle, "video/mp4")},
                                  data={"width": "32"}, headers={"X-API-Key": ALICE})
        task_id = created.json()["task_id"]
        for method, route in (("post", "cancel/"), ("post", "retry/"), ("delete", "")):
            response = client.request(method.upper(), f"/api/tasks/{task_id}/{route}", headers={"X-API-Key": BOB})
            assert response.status_code == 404, (route, response.text)
            assert response.json()["success"] is False
        client.headers["X-API-Key"] = ALICE
        assert wait_finished(client, task_id)["status"] == "done"
        assert client.delete(f"/api/tasks/{task_id}/").status_code == 200


def test_the_rate_limit_counts_cancel_delete_and_retry_like_the_other_routes(tmp_path):
    with embedded_client(tmp_path / "data", env={"TRANSMUTE_RATE_LIMIT": "3/minute"}) as client:
        answers = [client.post("/api/tasks/1/cancel/"), client.post("/api/tasks/1/retry/"),
                   client.delete("/api/tasks/1/"), client.post("/api/tasks/1/cancel/")]
        assert [answer.status_code for answer in answers] == [404, 404, 404, 429]
        assert answers[-1].json()["success"] is False and answers[-1].headers["retry-after"]
