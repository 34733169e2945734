"""A gateway started before any worker (or with the workers scaled to zero) is ready: it declares the queues it
publishes to, and a task created meanwhile waits in the queue for the first worker.

Real processes on this machine's RabbitMQ (the session's vhost with transmute's queues deleted: as fresh as a
new one), PostgreSQL and a moto S3 (tests/support/cluster.py).
"""

from __future__ import annotations

from tests.support.tasks import create_upload, status, wait_all_finished


def test_a_gateway_without_any_worker_is_ready_and_its_task_is_converted_once_a_worker_starts(
        cluster, cluster_clips):
    cluster.start_api()
    with cluster.client() as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["broker"] == "ok"
        task_id = create_upload(client, cluster_clips["one"], format="gif", width=64).json()["task_id"]
        assert status(client, task_id)["status"] == "queued"
        cluster.start_worker()
        assert wait_all_finished(client, [task_id], 90)[task_id]["status"] == "done"
