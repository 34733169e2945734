"""The sweeper on PostgreSQL and S3 (moto): two gateway replicas sweeping at once remove each expired source,
result and record once, and count it once; then the whole thing through two `transmute api` processes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from tests.support.cluster import S3_KEYS, Cluster
from tests.support.expiry import RETENTION, sweep_twice_at_once
from tests.support.metrics import sample
from tests.support.tasks import create_upload, wait_finished
from tests.support.waiting import wait_for
from transmute.settings import StorageConfig
from transmute.storage.s3 import S3Storage
from transmute.store import open_store


@pytest.fixture
def s3_storage(s3_server: str) -> S3Storage:
    """A fresh bucket on the moto server."""
    return S3Storage(StorageConfig(s3_endpoint=s3_server, s3_access_key=S3_KEYS["access"],
                                   s3_secret_key=S3_KEYS["secret"], s3_secure=False,
                                   s3_bucket=f"sweep-{uuid.uuid4().hex[:10]}"))


async def test_two_replicas_sweeping_at_once_remove_and_count_each_expired_part_exactly_once(database, s3_storage):
    stores = [open_store(database, retention=RETENTION) for _ in range(2)]
    await stores[0].create_schema()
    try:
        await sweep_twice_at_once(stores, s3_storage)
    finally:
        for store in stores:
            await store.close()


def test_through_two_gateway_processes_results_expire_with_410_and_their_objects_leave_the_bucket(
        cluster: Cluster, cluster_clips, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # The sources' own TTL stays an hour: a done task's source goes with its result.
    cluster.env.update({"TRANSMUTE_RESULT_TTL": "2", "TRANSMUTE_RECORD_TTL": "4",
                        "TRANSMUTE_SWEEP_INTERVAL": "0.3", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    cluster.start_worker()
    cluster.start_api(workers=2)  # two replicas, each with its sweeper
    with cluster.client() as client:
        ids = [create_upload(client, cluster_clips["one"], width=32).json()["task_id"] for _ in range(3)]
        for done in (wait_finished(client, task_id) for task_id in ids):
            assert done["status"] == "done", done
            expires = datetime.fromisoformat(done["expires_at"])
            assert expires - datetime.fromisoformat(done["completed_at"]) == timedelta(seconds=2)

        last = ids[-1]
        wait_for(lambda: client.get(f"/api/tasks/{last}/download/").status_code == 410, 15, "the result to expire")
        body = client.get(f"/api/tasks/{last}/result/").json()
        assert body["success"] is False and "expired at" in body["error"]
        wait_for(lambda: cluster.objects("results/") == [] and cluster.objects("sources/") == [], 15,
                 lambda: f"the objects to go: {cluster.objects('')}")
        wait_for(lambda: all(client.get(f"/api/tasks/{task_id}/status/").status_code == 404 for task_id in ids), 15,
                 "the records to go")
        assert cluster.objects("") == []

        def swept(kind: str) -> float:
            return sample(client.get("/metrics").text, "transmute_swept_total", kind=kind)

        # Whichever process answers, the counts are the deployment's (PROMETHEUS_MULTIPROC_DIR): each once.
        wait_for(lambda: swept("record") == 3, 5, "the records' removal to be counted")
        assert (swept("source"), swept("result"), swept("record")) == (3, 3, 3)
    assert "Traceback" not in cluster.log("api")
