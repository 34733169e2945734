"""The create's guards and stalled runs in distributed mode: an Idempotency-Key across gateway processes, the
queue's bound with the depth on both processes' /metrics, no disk check (files are in S3), and a stalled run
stopped on its worker, tried once more and failed; the S3 bucket checked each time."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.cluster import Cluster, running_ffmpeg_worker
from tests.support.metrics import sample
from tests.support.net import free_port
from tests.support.tasks import create_upload, queue_upload, status, wait_all_finished, wait_finished
from tests.support.waiting import wait_for

SLOW = {"width": 640, "fps": 25, "high_quality": "true"}
"""Parameters that make the 20 s 320x240 clip take several seconds to convert (scaled up: high_quality takes under
2 s at its own size)."""


def create_keyed(base: str, clip, key: str, **fields: object) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as client:
        return create_upload(client, clip, filename="clip.mp4", headers={"Idempotency-Key": key}, **fields)


def gauge(url: str) -> float | None:
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    return sample(text, "transmute_queue_depth") if "transmute_queue_depth" in text else None


def test_one_idempotency_key_sent_to_two_gateway_processes_at_once_makes_one_task_and_one_object(
        cluster: Cluster, cluster_clips):
    cluster.start_worker()
    cluster.start_api(workers=2)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: create_keyed(cluster.url, cluster_clips["one"], "order-7", width=32),
                                range(6)))
    assert {answer.status_code for answer in answers} <= {200, 409}, [answer.text for answer in answers]
    ids = {answer.json()["task_id"] for answer in answers if answer.status_code == 200}
    assert len(ids) == 1
    task_id = ids.pop()

    again = create_keyed(cluster.url, cluster_clips["one"], "order-7", width=32)
    assert again.status_code == 200 and again.json()["task_id"] == task_id
    assert again.headers["idempotent-replayed"] == "true"
    other = create_keyed(cluster.url, cluster_clips["two"], "order-7", width=32)  # another source
    assert other.status_code == 422 and other.json()["details"]["field"] == "Idempotency-Key"

    with cluster.client() as client:
        assert wait_finished(client, task_id)["status"] == "done"
        assert client.get("/api/tasks/").json()["pagination"]["total"] == 1
    wait_for(lambda: len(cluster.objects("sources/")) == 1, 10, lambda: f"one source: {cluster.objects('')}")
    assert cluster.objects("results/") == [f"results/task_{task_id}_result.gif"]


def test_past_max_queued_a_create_is_a_503_and_both_processes_show_the_queue_depth(cluster: Cluster, cluster_clips):
    # A disk reserve larger than any disk: distributed mode keeps no files of its own, so it is not checked.
    cluster.env.update(TRANSMUTE_MAX_QUEUED="2", TRANSMUTE_MIN_FREE_DISK_MB="100000000")
    port = free_port()
    # One conversion at a time, prefetching no message beyond it: the others wait in RabbitMQ's queue.
    cluster.start_worker(threads=1, TRANSMUTE_METRICS_PORT=str(port), dramatiq_queue_prefetch="1")
    worker_metrics = f"http://127.0.0.1:{port}"
    cluster.start_api()
    with cluster.client() as client:
        blocker = queue_upload(client, cluster_clips["long"], **SLOW)
        wait_for(lambda: status(client, blocker)["status"] == "running", 60, "the long task to run")
        waiting = [queue_upload(client, cluster_clips["one"], width=32) for _ in range(2)]
        wait_for(lambda: gauge(cluster.url) == 2, 15, "the gateway's gauge to count two waiting tasks")
        wait_for(lambda: gauge(worker_metrics) == 2, 15, "the worker's gauge to count two waiting messages")

        refused = create_upload(client, cluster_clips["one"], width=32)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) > 0
        assert "TRANSMUTE_MAX_QUEUED" in refused.json()["error"] and refused.json()["details"]["max_queued"] == 2
        assert len(cluster.objects("sources/")) == 3
        assert client.get("/api/tasks/").json()["pagination"]["total"] == 3

        client.post(f"/api/tasks/{blocker}/cancel/")
        assert all(last["status"] == "done" for last in wait_all_finished(client, waiting).values())
        wait_for(lambda: gauge(cluster.url) == 0 and gauge(worker_metrics) == 0, 15, "both gauges to drop to 0")
        assert create_upload(client, cluster_clips["one"], width=32).status_code == 200


def test_a_stalled_run_is_stopped_on_its_worker_tried_once_more_then_failed(cluster: Cluster, cluster_clips):
    # `stall` (tests/distributed/plugins) runs a real ffmpeg whose output pipe stops being read a few frames in.
    cluster.start_worker(TRANSMUTE_STALL_TIMEOUT="4")
    cluster.start_api()
    with cluster.client() as client:
        task_id = queue_upload(client, cluster_clips["long"], format="stall")
        seen: list[tuple[str, int]] = []

        def finished() -> bool:
            now = status(client, task_id)
            seen.append((now["status"], now["attempt"]))
            return now["status"] in ("done", "failed", "cancelled")

        wait_for(finished, 90, lambda: f"the stalled task to fail: {seen[-3:]}\n{cluster.log('worker0')}",
                 interval=0.1)
        final = status(client, task_id)
        assert final["status"] == "failed" and final["attempt"] == 2, final
        assert ("running", 1) in seen and ("running", 2) in seen
        message = final["error_message"]
        where = re.search(r"stalled at (\d+)% of the conversion", message)
        # Where it stood: a few % in, or 0 when a loaded machine blocks ffmpeg before its first progress report.
        assert where and 0 <= int(where.group(1)) < 50 and "TRANSMUTE_STALL_TIMEOUT" in message, message
        assert "stalled" in cluster.log("worker0") and "trying it once more" in cluster.log("worker0")
        wait_for(lambda: running_ffmpeg_worker(cluster) is None, 5, "the stalled ffmpeg to be gone")
        wait_for(lambda: cluster.objects(f"attempts/task_{task_id}/") == [], 5, "the runs' markers to go")
        assert cluster.objects("results/") == []
        assert len(cluster.objects("sources/")) == 1  # kept: the task can be retried

        retried = client.post(f"/api/tasks/{task_id}/retry/")
        assert retried.status_code == 200 and retried.json()["attempt"] == 3, retried.text
