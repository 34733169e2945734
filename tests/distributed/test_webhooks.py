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
