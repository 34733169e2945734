"""`transmute worker` as it runs in a pod: its metrics endpoint, JSON logs, heartbeat and drain on SIGTERM.

Real processes: `transmute api` and `transmute worker` on RabbitMQ, PostgreSQL and a moto S3
(the fixtures of tests/conftest.py, from tests/support/cluster.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.metrics import sample
from tests.support.net import free_port
from tests.support.servers import TRANSMUTE
from tests.support.tasks import create_upload, status, wait_all_finished
from tests.support.waiting import wait_for


def healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([TRANSMUTE, "healthcheck", "worker", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def json_lines(text: str) -> list[dict]:
    """Every line of a log, each parsed as JSON (a line that is not JSON fails the test)."""
    lines = []
    for line in text.splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"a log line is not JSON: {line!r}") from None
    return lines


def test_healthcheck_worker_exits_0_on_a_fresh_heartbeat_and_1_with_one_line_on_a_stale_or_missing_one(
        tmp_path: Path):
    beat = tmp_path / "worker.heartbeat"
    missing = healthcheck(env={"TRANSMUTE_HEARTBEAT_FILE": str(beat)})
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr

    beat.write_text("1 ok\n")
    fresh = healthcheck(env={"TRANSMUTE_HEARTBEAT_FILE": str(beat)})
    assert fresh.returncode == 0, fresh.stderr

    old = time.time() - 61
    os.utime(beat, (old, old))
    stale = healthcheck(env={"TRANSMUTE_HEARTBEAT_FILE": str(beat)})
    assert stale.returncode == 1
    assert stale.stderr.startswith("transmute: error: the worker heartbeat is stale")
    assert stale.stderr.count("\n") == 1
    assert healthcheck("--max-age", "120", "--file", str(beat)).returncode == 0


def test_a_worker_counts_its_conversion_on_its_metrics_endpoint_beats_and_logs_json_with_task_ids(
        cluster, cluster_clips):
    port = free_port()
    beat = Path(cluster.env["TMPDIR"]) / "worker.heartbeat"
    cluster.env.update({"TRANSMUTE_LOG_FORMAT": "json", "TRANSMUTE_HEARTBEAT_FILE": str(beat),
                        "TRANSMUTE_HEARTBEAT_INTERVAL": "1"})
    cluster.start_api()
    cluster.start_worker(processes=2, TRANSMUTE_METRICS_PORT=str(port))
    wait_for(beat.exists, 30, "the worker's first heartbeat")
    assert healthcheck(env={"TRANSMUTE_HEARTBEAT_FILE": str(beat)}).returncode == 0

    with cluster.client() as client:
        task_id = create_upload(client, cluster_clips["one"], format="gif", width=64).json()["task_id"]
        assert wait_all_finished(client, [task_id], 90)[task_id]["status"] == "done"
        api_metrics = client.get("/metrics").text
    assert sample(api_metrics, "transmute_tasks_created_total", format="gif") == 1
    assert sample(api_metrics, "transmute_http_requests_total", method="POST", path="/api/tasks/create") == 1

    def counted() -> str | None:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        return text if sample(text, "transmute_conversions_total", format="gif", outcome="done") >= 1 else None

    worker_metrics = wait_for(counted, 10, "the conversion in the worker's metrics")
    assert sample(worker_metrics, "transmute_conversions_total", format="gif", outcome="done") == 1
    assert sample(worker_metrics, "transmute_conversion_seconds_count", format="gif") == 1
    assert sample(worker_metrics, "transmute_conversions_in_flight") == 0

    worker_lines = json_lines(cluster.log("worker0"))
    api_lines = json_lines(cluster.log("api"))
    for line in worker_lines + api_lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    about_task = [line for line in worker_lines + api_lines if f"task {task_id}" in line["message"]]
    assert about_task, "no log line about the task"
    assert all(line.get("task_id") == task_id for line in about_task), about_task
    assert any(line["logger"] == "transmute.projector" for line in about_task)


def test_a_worker_given_sigterm_mid_conversion_finishes_that_task_before_it_exits(cluster, cluster_clips):
    cluster.start_api()
    worker = cluster.start_worker()
    with cluster.client() as client:
        task_id = create_upload(client, cluster_clips["long"], fps=25, keep_original_size="true").json()["task_id"]
        wait_for(lambda: status(client, task_id)["progress"] > 0, 60, "the conversion to be under way",
                 interval=0.1)
        assert status(client, task_id)["status"] == "running"
        worker.send_signal(signal.SIGTERM)
        wait_for(lambda: "for the ones in flight" in cluster.log("worker0"), 30, "the worker to start draining")
        assert worker.poll() is None, "the worker exited without finishing its conversion"
        assert worker.wait(120) == 0
        final = wait_all_finished(client, [task_id], 30)[task_id]
    assert final["status"] == "done", final
    log = cluster.log("worker0")
    assert "waiting up to 1800 s for the ones in flight" in log
    assert "conversions in flight finished" in log
    assert "interrupted by shutdown" not in log and "handed back" not in log
    assert cluster.objects("attempts/") == []
