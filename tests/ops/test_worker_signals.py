"""Stopping `transmute worker`: a second SIGTERM forces the stop (the conversion in flight is handed back and
resumed as the next attempt), and a clean stop of an idle worker logs no error.

Real processes: `transmute api` and `transmute worker` on RabbitMQ, PostgreSQL and a moto S3
(tests/support/cluster.py).
"""

from __future__ import annotations

import signal
import time

from tests.support.tasks import create_upload, status, wait_all_finished
from tests.support.waiting import wait_for


def test_a_second_sigterm_forces_the_stop_and_the_task_is_handed_back_and_resumed_as_attempt_2(
        cluster, cluster_clips):
    cluster.start_api()
    worker = cluster.start_worker()
    with cluster.client() as client:
        task_id = create_upload(client, cluster_clips["long"], fps=25, keep_original_size="true").json()["task_id"]
        wait_for(lambda: status(client, task_id)["progress"] > 0, 60, "the conversion to be under way",
                 interval=0.1)
        worker.send_signal(signal.SIGTERM)
        wait_for(lambda: "for the ones in flight" in cluster.log("worker0"), 30, "the worker to start draining")
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        # The shutdown timeout is 1800 s: only the second signal lets it exit within a minute.
        assert worker.wait(60) == 0
        log = cluster.log("worker0")
        assert "second stop signal: forcing the stop" in log
        assert f"task {task_id}: started (gif, attempt 1)" in log
        assert f"task {task_id}: interrupted by shutdown" in log and "resumes from the start as attempt 2" in log
        assert "Traceback" not in log

        cluster.start_worker()
        final = wait_all_finished(client, [task_id], 120)[task_id]
    assert final["status"] == "done" and final["attempt"] == 2, final
    assert f"task {task_id}: done (gif) in " in cluster.log("worker1")


def test_a_clean_sigterm_of_an_idle_worker_logs_no_error(cluster, cluster_clips):
    cluster.env["TRANSMUTE_BROKER_HEARTBEAT"] = "1"  # idle connections miss heartbeats within seconds
    cluster.start_api()
    worker = cluster.start_worker(processes=2)
    with cluster.client() as client:
        task_id = create_upload(client, cluster_clips["one"], format="gif", width=64).json()["task_id"]
        assert wait_all_finished(client, [task_id], 90)[task_id]["status"] == "done"
    finished = time.monotonic()
    # Idle for several AMQP heartbeats: RabbitMQ drops the connection the conversion's thread sent its events on
    # (that thread no longer answers heartbeats), which pika used to report as errors at the stop.
    wait_for(lambda: time.monotonic() - finished > 6, 30, "the worker to have been idle 6 heartbeats")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    log = cluster.log("worker0")
    assert "ERROR" not in log and "Traceback" not in log, log
