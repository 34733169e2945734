"""Several `transmute worker` on one host, with no setting of their own: each has its own metrics port and
heartbeat file, and the healthcheck of one that died fails while the other's passes.

Real processes on this machine's RabbitMQ and a moto S3 (tests/support/cluster.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx

from tests.support.net import free_ports
from tests.support.processes import children
from tests.support.servers import TRANSMUTE
from tests.support.waiting import wait_for


def healthcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TRANSMUTE, "healthcheck", "worker", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def metrics_served(port: int) -> bool:
    try:
        return "transmute_conversions_in_flight" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return False


def test_two_workers_on_one_host_serve_metrics_on_two_ports_and_beat_in_two_files(cluster):
    base = free_ports(2)
    beat = Path(cluster.env["TMPDIR"]) / "worker.heartbeat"
    cluster.env.update({"TRANSMUTE_METRICS_PORT": str(base), "TRANSMUTE_HEARTBEAT_INTERVAL": "1",
                        "TRANSMUTE_HEARTBEAT_FILE": str(beat)})
    first = cluster.start_worker()
    wait_for(beat.exists, 60, "the first worker's heartbeat")
    second = cluster.start_worker()
    second_beat = beat.with_name("worker-1.heartbeat")
    wait_for(second_beat.exists, 60, "the second worker's heartbeat")

    wait_for(lambda: metrics_served(base) and metrics_served(base + 1), 30, "both workers' metrics")
    assert "instance 1 on this host" in cluster.log("worker1")
    assert healthcheck(cluster.env).returncode == 0
    assert healthcheck(cluster.env, "--instance", "1").returncode == 0

    # The first dies without a chance to clean up: its heartbeat file stays, and must not count as alive.
    for pid in [*children(first.pid), first.pid]:
        os.kill(pid, signal.SIGKILL)
    first.wait(30)
    dead = healthcheck(cluster.env)
    assert dead.returncode == 1
    assert dead.stderr.count("\n") == 1 and "no longer running" in dead.stderr, dead.stderr
    assert healthcheck(cluster.env, "--instance", "1").returncode == 0
    assert second.poll() is None and metrics_served(base + 1)


def test_a_worker_whose_metrics_port_is_taken_stops_naming_the_setting(cluster):
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**cluster.env, "TRANSMUTE_METRICS_PORT": str(port)}
        result = subprocess.run([TRANSMUTE, "worker"], capture_output=True, text=True, timeout=90, env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("transmute: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"transmute: error: TRANSMUTE_METRICS_PORT: port {port}")
