"""Webhooks in distributed mode: `transmute worker` delivers them (RabbitMQ, its own queue), retries wait in
RabbitMQ's wait queues, the outcome reaches the status through the projector of `transmute api`."""

from __future__ import annotations

from tests.support.cluster import Cluster
from tests.support.tasks import create_upload, status, wait_finished
from tests.support.waiting import wait_for
from tests.support.webhooks import SECRET, receiving


def test_a_worker_delivers_the_signed_webhook_again_after_a_500_and_the_status_shows_it(cluster: Cluster,
                                                                                        cluster_clips):
    cluster.env.update(TRANSMUTE_WEBHOOK_SECRET=SECRET, TRANSMUTE_WEBHOOK_RETRY_DELAYS="0.5,0.5")
    cluster.start_worker()
    cluster.start_api()
    with receiving([500, 503]) as receiver, cluster.client() as client:
        response = create_upload(client, cluster_clips["one"], width=32, webhook_url=receiver.url)
        assert response.status_code == 200, response.text
        task_id = response.json()["task_id"]
        assert wait_finished(client, task_id)["status"] == "done"

        deliveries = wait_for(lambda: len(receiver.of_task(task_id)) >= 3 and receiver.of_task(task_id), 30,
                              lambda: f"three tries, got {len(receiver.of_task(task_id))}")
        assert len({delivery.headers["webhook-id"] for delivery in deliveries}) == 1
        assert all(delivery.verified()["status"] == "done" for delivery in deliveries)
        shown = wait_for(lambda: (status(client, task_id)["webhook"] or {}).get("attempts") == 3
                         and status(client, task_id)["webhook"], 15, "the third try in the status")
        assert shown["event"] == "done" and shown["status_code"] == 200
        assert "deliver_webhook" not in cluster.log("api")  # the gateway only enqueues


def test_the_gateway_only_enqueues_a_cancel_webhook_and_a_worker_started_later_delivers_it(cluster: Cluster,
                                                                                           cluster_clips):
    cluster.env.update(TRANSMUTE_WEBHOOK_SECRET=SECRET)
    cluster.start_api()  # no worker yet: the task stays queued
    with receiving() as receiver, cluster.client() as client:
        response = create_upload(client, cluster_clips["one"], width=32, webhook_url=receiver.url,
                                 webhook_events="done,cancelled")
        task_id = response.json()["task_id"]
        cancelled = client.post(f"/api/tasks/{task_id}/cancel/")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert receiver.deliveries == []  # the cancel answered without calling the receiver

        cluster.start_worker()
        (delivery,) = wait_for(lambda: receiver.of_task(task_id), 30, "the cancelled webhook from the worker")
        assert delivery.verified()["status"] == "cancelled"
        wait_for(lambda: (status(client, task_id)["webhook"] or {}).get("event") == "cancelled", 15,
                 "the delivery in the status")
