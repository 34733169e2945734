"""Cancel and delete in distributed mode: the cancel reaches whichever worker runs the task (a control message,
the worker never reads the database), and a delete leaves no object of the task in S3."""

from __future__ import annotations

import time

from tests.support.cluster import Cluster, running_ffmpeg_worker
from tests.support.tasks import create_upload, status, wait_finished
from tests.support.waiting import wait_for

LONG = {"width": 640, "fps": 25, "high_quality": "true"}
"""Parameters that make the 20 s 320x240 clip take several seconds to convert (scaled up: high_quality takes under
2 s at its own size): long enough to cancel it while it runs."""


def test_a_cancel_stops_the_run_on_its_worker_and_a_delete_removes_every_object(cluster: Cluster, cluster_clips):
    cluster.start_worker()
    cluster.start_worker()
    cluster.start_api()
    with cluster.client() as client:
        task_id = create_upload(client, cluster_clips["long"], **LONG).json()["task_id"]
        wait_for(lambda: status(client, task_id)["status"] == "running" and running_ffmpeg_worker(cluster), 60,
                 "the conversion's ffmpeg to run")
        assert cluster.objects(f"attempts/task_{task_id}/")  # the run's marker, in S3 while it goes on

        asked = time.monotonic()
        response = client.post(f"/api/tasks/{task_id}/cancel/")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        wait_for(lambda: running_ffmpeg_worker(cluster) is None, 2.0, "the cancelled ffmpeg to end")
        stopped_after = time.monotonic() - asked
        wait_for(lambda: "cancelled while running" in cluster.log("worker0") + cluster.log("worker1"), 5,
                 "a worker to say it stopped the run")
        wait_for(lambda: cluster.objects(f"attempts/task_{task_id}/") == [], 5, "the run's marker to go")
        assert status(client, task_id)["status"] == "cancelled"
        assert cluster.objects("results/") == []
        assert stopped_after < 2.0

        # A second task converts: the workers go on after a cancel.
        other = create_upload(client, cluster_clips["one"], width=32).json()["task_id"]
        assert wait_finished(client, other)["status"] == "done"
        assert cluster.objects(f"results/task_{other}_")

        for gone in (task_id, other):
            response = client.delete(f"/api/tasks/{gone}/")
            assert response.status_code == 200, response.text
            for route in ("status", "result", "download"):
                response = client.get(f"/api/tasks/{gone}/{route}/")
                assert response.status_code == 404 and response.json()["success"] is False
        assert client.get(f"/media/results/task_{other}_result.gif").status_code == 404
    assert cluster.objects("") == []
