"""Expiry through the API of the embedded app, with TTLs of seconds: expires_at, 410 Gone once it is past, the
files gone from the data folder, the records gone, and what the sweeper removed counted on /metrics."""

from __future__ import annotations

from datetime import datetime, timedelta

from litestar.testing import TestClient

from tests.support.embedded import embedded_client, run_in_app
from tests.support.lifecycle import SLOW, stored
from tests.support.metrics import sample
from tests.support.tasks import queue_upload, status, wait_finished
from tests.support.waiting import wait_for
from transmute.services.api.sweeper import Sweeper

SWEEP = {"TRANSMUTE_SWEEP_INTERVAL": "0.2"}


def swept(app: TestClient) -> dict[str, float]:
    """transmute_swept_total by kind, as /metrics shows it."""
    text = app.get("/metrics").text
    return {kind: sample(text, "transmute_swept_total", kind=kind) for kind in ("source", "result", "record")}


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_result_expires_after_its_ttl_then_it_is_410_everywhere_and_its_files_are_gone(tmp_path, clips):
    data_dir = tmp_path / "data"
    env = {**SWEEP, "TRANSMUTE_RESULT_TTL": "3s", "TRANSMUTE_RECORD_TTL": "0"}
    with embedded_client(data_dir, env=env) as app:
        before = swept(app)
        task_id = queue_upload(app, clips["short"], width=32)
        done = wait_finished(app, task_id)
        assert done["status"] == "done"
        assert parse(done["expires_at"]) - parse(done["completed_at"]) == timedelta(seconds=3)
        [listed] = app.get("/api/tasks/").json()["tasks"]
        assert listed["expires_at"] == done["expires_at"]
        output_url = f"/media/results/task_{task_id}_result.gif"

        wait_for(lambda: app.get(f"/api/tasks/{task_id}/result/").status_code == 410, 10, "the result to expire")
        for url in (f"/api/tasks/{task_id}/result/", f"/api/tasks/{task_id}/download/", output_url):
            response = app.get(url)
            assert response.status_code == 410, (url, response.text)
            assert response.headers["content-type"].startswith("application/json")
            body = response.json()
            assert body["success"] is False and body["expires_at"] == done["expires_at"]
            assert f"expired at {done['expires_at']}" in body["error"]
        # The source goes too, though its own TTL is an hour: a done task is never retried.
        wait_for(lambda: stored(data_dir) == [], 10, lambda: f"the task's files to go: {stored(data_dir)}")

        batch = app.get("/api/tasks/batch-download/", params={"task_ids": task_id})
        assert batch.status_code == 404 and "expired" in batch.json()["error"]
        still = status(app, task_id)  # the record stays (RECORD_TTL 0: for ever), saying when the file went
        assert still["status"] == "done" and still["expires_at"] == done["expires_at"]
        wait_for(lambda: swept(app)["result"] - before["result"] == 1, 5, "the removal to be counted")
        assert {kind: swept(app)[kind] - before[kind] for kind in before} == {"source": 1, "result": 1, "record": 0}


def test_a_retry_after_the_source_expired_is_a_410_and_the_upload_is_gone(tmp_path, clips):
    data_dir = tmp_path / "data"
    with embedded_client(data_dir, threads=1, env={**SWEEP, "TRANSMUTE_SOURCE_TTL": "1"}) as app:
        task_id = queue_upload(app, clips["long"], **SLOW)
        cancelled = app.post(f"/api/tasks/{task_id}/cancel/").json()
        assert cancelled["status"] == "cancelled"
        assert parse(cancelled["expires_at"]) - parse(cancelled["completed_at"]) == timedelta(seconds=1)
        wait_for(lambda: stored(data_dir, "sources/") == [], 10, lambda: f"the source to go: {stored(data_dir)}")

        response = app.post(f"/api/tasks/{task_id}/retry/")
        assert response.status_code == 410, response.text
        body = response.json()
        assert body["success"] is False and "uploaded source was removed" in body["error"]
        assert body["expires_at"] == cancelled["expires_at"]
        assert status(app, task_id)["status"] == "cancelled" and status(app, task_id)["attempt"] == 1


def test_an_expired_record_goes_with_every_file_of_its_task_and_its_routes_answer_404(tmp_path, clips):
    data_dir = tmp_path / "data"
    with embedded_client(data_dir, env={**SWEEP, "TRANSMUTE_RECORD_TTL": "1"}) as app:
        before = swept(app)
        task_id = queue_upload(app, clips["short"], width=32)
        done = wait_finished(app, task_id)
        assert parse(done["expires_at"]) - parse(done["completed_at"]) == timedelta(seconds=1)  # the record's
        wait_for(lambda: app.get(f"/api/tasks/{task_id}/status/").status_code == 404, 10, "the record to go")
        for route in ("result", "download"):
            assert app.get(f"/api/tasks/{task_id}/{route}/").status_code == 404
        assert app.get("/api/tasks/").json()["tasks"] == []
        assert stored(data_dir) == []
        assert {kind: swept(app)[kind] - before[kind] for kind in before} == {"source": 0, "result": 0, "record": 1}


def test_with_ttls_of_zero_nothing_expires_and_the_sweeper_removes_nothing(tmp_path, clips):
    data_dir = tmp_path / "data"
    forever = {"TRANSMUTE_SOURCE_TTL": "0", "TRANSMUTE_RESULT_TTL": "0", "TRANSMUTE_RECORD_TTL": "0"}
    with embedded_client(data_dir, env=forever) as app:
        task_id = queue_upload(app, clips["short"], width=32)
        done = wait_finished(app, task_id)
        assert done["status"] == "done" and done["expires_at"] is None
        assert app.get(f"/api/tasks/{task_id}/result/").json()["expires_at"] is None
        services = app.app.state.services  # the app's own sweeper makes its first pass a minute from its start
        sweeper = Sweeper(services.store, services.storage, services.settings.expiry)
        assert run_in_app(app, sweeper.run_once) == {"source": 0, "result": 0, "record": 0}
        assert len(stored(data_dir, "sources/")) == 1 and len(stored(data_dir, "results/")) == 1
        assert app.get(f"/api/tasks/{task_id}/download/").status_code == 200


def test_a_task_that_runs_has_no_expires_at(tmp_path, clips):
    with embedded_client(tmp_path / "data", threads=1, env={"TRANSMUTE_RESULT_TTL": "1"}) as app:
        task_id = queue_upload(app, clips["long"], **SLOW)
        assert status(app, task_id)["expires_at"] is None
        app.delete(f"/api/tasks/{task_id}/")
