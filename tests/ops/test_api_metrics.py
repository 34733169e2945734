"""The gateway's /metrics: Litestar's request metrics, tasks created by format, and (embedded mode) the
conversions of its worker threads."""

from __future__ import annotations

from tests.api.support import upload, wait_finished
from tests.ops.conftest import sample


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
    from tests.api.support import embedded_client

    with embedded_client(tmp_path / "data", env={"TRANSMUTE_API_KEYS": "a-long-enough-secret-key"}) as client:
        assert client.get("/api/formats/").status_code == 401
        assert client.get("/metrics").status_code == 200
        assert "/metrics" not in client.get("/schema/openapi.json").json()["paths"]
