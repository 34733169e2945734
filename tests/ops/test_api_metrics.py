"""The gateway's /metrics: Litestar's request metrics, tasks created by format, and (embedded mode) the
conversions of its worker threads."""

from __future__ import annotations

import socket

import httpx

from tests.support.embedded import embedded_client
from tests.support.metrics import sample
from tests.support.tasks import upload, wait_finished
from tests.support.waiting import wait_for


def test_metrics_are_prometheus_text_counting_requests_and_their_latency_by_route(app):
    for _ in range(3):
        assert app.get("/api/formats/").status_code == 200
    response = app.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, "transmute_http_requests_total", method="GET", path="/api/formats") >= 3
    assert sample(text, "transmute_http_request_duration_seconds_count", method="GET", path="/api/formats") >= 3
    assert sample(text, "transmute_http_request_duration_seconds_bucket", path="/api/formats", le="+Inf") >= 3


def test_metrics_group_task_routes_by_template_not_by_task_id(app, small_clip):
    task = upload(app, small_clip)
    app.get(f"/api/tasks/{task['task_id']}/status/")
    text = app.get("/metrics").text
    assert sample(text, "transmute_http_requests_total", path="/api/tasks/{task_id}/status") >= 1
    assert f"/api/tasks/{task['task_id']}/" not in text


def test_a_created_task_is_counted_by_format_and_its_conversion_by_outcome(app, small_clip):
    before = sample(app.get("/metrics").text, "transmute_tasks_created_total", format="gif")
    task = upload(app, small_clip, format="gif", width=64)
    text = app.get("/metrics").text
    assert sample(text, "transmute_tasks_created_total", format="gif") == before + 1
    assert wait_finished(app, task["task_id"])["status"] == "done"
    text = app.get("/metrics").text
    assert sample(text, "transmute_conversions_total", format="gif", outcome="done") >= 1
    assert sample(text, "transmute_conversion_seconds_count", format="gif") >= 1
    assert sample(text, "transmute_conversions_in_flight") == 0


def test_probes_and_scrapes_are_not_counted_as_requests(app):
    app.get("/health/live")
    app.get("/health/ready")
    text = app.get("/metrics").text
    assert sample(text, "transmute_http_requests_total", path="/health/live") == 0
    assert sample(text, "transmute_http_requests_total", path="/metrics") == 0


def test_the_metrics_route_needs_no_api_key_and_stays_out_of_the_openapi_schema(tmp_path):
    with embedded_client(tmp_path / "data", env={"TRANSMUTE_API_KEYS": "a-long-enough-secret-key"}) as client:
        assert client.get("/api/formats/").status_code == 401
        assert client.get("/metrics").status_code == 200
        assert "/metrics" not in client.get("/schema/openapi.json").json()["paths"]


def test_refused_keys_and_rate_limited_requests_are_counted_with_their_real_status(tmp_path):
    key = "a-long-enough-secret-key"
    env = {"TRANSMUTE_API_KEYS": key, "TRANSMUTE_RATE_LIMIT": "2/minute"}
    with embedded_client(tmp_path / "data", env=env) as client:
        before = client.get("/metrics").text
        assert client.get("/api/tasks/").status_code == 401
        assert [client.get("/api/tasks/", headers={"X-API-Key": key}).status_code for _ in range(3)] == [200, 200, 429]
        after = client.get("/metrics").text

    def added(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    expected = {"200": 2, "401": 1, "429": 1, "500": 0}
    assert {status: added("transmute_http_requests_total", path="/api/tasks", status_code=status)
            for status in expected} == expected
    assert added("transmute_http_requests_error_total") == 0, "a refused request is not a server error"


def test_a_client_that_disconnects_mid_upload_is_counted_as_499_not_as_a_server_error(start_server):
    server = start_server()
    before = httpx.get(f"{server.url}/metrics", timeout=5).text
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"POST /api/tasks/create/ HTTP/1.1\r\nHost: test\r\n"
                           b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1000000\r\n\r\n"
                           b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
                           + b"\0" * 4096)

    def counted_499() -> str | None:
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
        return text if sample(text, "transmute_http_requests_total", path="/api/tasks/create", status_code="499") \
            else None

    text = wait_for(counted_499, 30, lambda: f"a request counted as 499 (server log:\n{server.log()})",
                    interval=0.05)
    for name, labels in (("transmute_http_requests_total", {"status_code": "500"}),
                         ("transmute_http_requests_error_total", {})):
        assert sample(text, name, **labels) == sample(before, name, **labels), "a client leaving is no server error"
