"""Distributed mode when things break: a worker killed, the object storage away, a task that kills workers."""

from __future__ import annotations

import os
import signal

from tests.support.cluster import Cluster, running_ffmpeg_worker
from tests.support.gifs import is_gif
from tests.support.proxy import TcpProxy
from tests.support.tasks import create_upload, create_url, status, wait_all_finished
from tests.support.waiting import wait_for

LONG = {"width": 640, "fps": 25, "high_quality": "true"}
"""Parameters that make the 20 s 320x240 clip take several seconds to convert (scaled up: high_quality takes under
2 s at its own size): long enough to be interrupted."""


def test_a_worker_killed_mid_conversion_leaves_the_task_to_another_worker_which_finishes_it(
    cluster: Cluster, cluster_clips
) -> None:
    cluster.start_worker()
    cluster.start_worker()
    cluster.start_api()
    with cluster.client() as client:
        task_id = create_upload(client, cluster_clips["long"], **LONG).json()["task_id"]
        wait_for(lambda: 0 < status(client, task_id)["progress"] < 60, 60, "the conversion to be under way")
        victim = wait_for(lambda: running_ffmpeg_worker(cluster), 10, "the converting worker")
        os.kill(victim, signal.SIGKILL)
        assert status(client, task_id)["status"] == "running"

        finished = wait_all_finished(client, [task_id], timeout=60)[task_id]
        assert finished["status"] == "done", finished
        download = client.get(f"/api/tasks/{task_id}/download/")
        assert download.status_code == 200 and is_gif(download.content)
    assert cluster.objects("results/") == [f"results/task_{task_id}_result.gif"]
    assert cluster.objects("attempts/") == []


def test_an_object_storage_outage_during_the_upload_is_waited_out_through_several_retries_and_the_task_is_done(
    cluster: Cluster, clip_server, s3_server
) -> None:
    proxy = TcpProxy(s3_server)
    cluster.start_worker(TRANSMUTE_S3_ENDPOINT=proxy.address)  # the gateway reaches the storage directly
    cluster.start_api()
    with cluster.client() as client:
        task_id = create_url(client, f"{clip_server}/long.mp4", **LONG).json()["task_id"]
        wait_for(lambda: 0 < status(client, task_id)["progress"] < 60, 60, "the conversion to be under way")
        proxy.cut()
        # The outage lasts until the worker has tried to store the result three times, backing off 1 and 2 s in
        # between (each try with the S3 client's own retries): the storage was away for seconds, the task waited.
        wait_for(lambda: cluster.log("worker0").count("trying again") >= 3, 90, "the worker to retry the upload")
        during = status(client, task_id)
        proxy.restore()
        assert during["status"] == "running" and during["progress"] > 50, during  # converted, not yet stored

        finished = wait_all_finished(client, [task_id], timeout=60)[task_id]
        assert finished["status"] == "done", finished
        download = client.get(f"/api/tasks/{task_id}/download/")
        assert download.status_code == 200 and is_gif(download.content)
    assert "trying again" in cluster.log("worker0")
    assert cluster.objects("results/") == [f"results/task_{task_id}_result.gif"]


def test_a_task_that_kills_its_worker_every_time_fails_after_three_attempts_and_the_worker_goes_on(
    cluster: Cluster, cluster_clips
) -> None:
    supervisor = cluster.start_worker()
    cluster.start_api()
    with cluster.client() as client:
        # `crash` is a throw-away plugin (tests/distributed/plugins) whose conversion SIGKILLs its process.
        deadly = create_upload(client, cluster_clips["one"], format="crash").json()["task_id"]
        ordinary = create_upload(client, cluster_clips["one"], width=64).json()["task_id"]
        finished = wait_all_finished(client, [deadly, ordinary], timeout=90)
    assert finished[deadly]["status"] == "failed"
    assert finished[deadly]["error_message"].startswith("The conversion stopped its worker 3 times in a row")
    assert finished[ordinary]["status"] == "done"
    assert cluster.log("worker0").count("died with exit code -9") == 3
    assert supervisor.poll() is None
    assert cluster.objects("attempts/") == []
