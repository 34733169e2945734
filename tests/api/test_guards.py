"""The create's guards in embedded mode, through the API: idempotent creates (Idempotency-Key), the queue's bound
(TRANSMUTE_MAX_QUEUED), the disk's reserve (TRANSMUTE_MIN_FREE_DISK_MB) and stalled runs (TRANSMUTE_STALL_TIMEOUT),
checked in the data folder too."""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import update

from tests.support.cluster import PLUGIN_DIR
from tests.support.embedded import embedded_client, run_in_app, store_of
from tests.support.lifecycle import ALICE, BOB, SLOW, stored
from tests.support.metrics import sample
from tests.support.processes import live_ffmpeg_children
from tests.support.tasks import create_upload, queue_upload, status, wait_finished
from tests.support.waiting import wait_for
from transmute.core.models import utcnow
from transmute.store.schema import IdempotencyRow


def create_keyed(client: httpx.Client, clip: Path, key: str, *, api_key: str | None = None,
                 **fields: object) -> httpx.Response:
    headers = {"Idempotency-Key": key, **({"X-API-Key": api_key} if api_key else {})}
    return create_upload(client, clip, filename="clip.mp4", headers=headers, **fields)


def queue_depth(client: httpx.Client) -> float:
    return sample(client.get("/metrics").text, "transmute_queue_depth")


# ------------------------------------------------------------------------------------------ idempotent creates


def test_the_same_idempotency_key_and_request_answer_the_same_task_without_a_second_upload(app, data_dir, clips):
    # The metrics are the process's: other tests of this session count in them too.
    done_before = sample(app.get("/metrics").text, "transmute_conversions_total", outcome="done")
    first = create_keyed(app, clips["short"], "order-42", width=32)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    again = create_keyed(app, clips["short"], '"order-42"', width=32)  # the draft's quoted form is the same key
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"

    task_id = first.json()["task_id"]
    assert wait_finished(app, task_id)["status"] == "done"
    replay = create_keyed(app, clips["short"], "order-42", width=32)  # also once it is done: the same answer
    assert replay.json() == first.json()
    assert stored(data_dir, "sources/") == [status_key(app, task_id)]
    assert app.get("/api/tasks/").json()["pagination"]["total"] == 1
    assert sample(app.get("/metrics").text, "transmute_conversions_total", outcome="done") == done_before + 1

    other = create_keyed(app, clips["short"], "order-42", width=48)
    assert other.status_code == 422, other.text
    body = other.json()
    assert body["success"] is False and "Idempotency-Key" in body["error"] and body["details"]["field"] == \
        "Idempotency-Key"
    assert len(stored(data_dir, "sources/")) == 1
    assert app.get("/api/tasks/").json()["pagination"]["total"] == 1


def test_an_idempotency_key_with_a_url_source_answers_the_first_task_and_another_url_is_a_422(
        app, http_source, media):
    name = media.clip.name
    headers = {"Idempotency-Key": "fetch-1"}
    first = app.post("/api/tasks/create/", json={"url": f"{http_source}/{name}", "width": 64}, headers=headers)
    assert first.status_code == 200, first.text
    # The same parameters in another order, and a default given explicitly, are the same request.
    again = app.post("/api/tasks/create/", json={"width": 64, "format": "gif", "url": f"{http_source}/{name}"},
                     headers=headers)
    assert again.status_code == 200 and again.json() == first.json(), again.text
    other = app.post("/api/tasks/create/", json={"url": f"{http_source}/{name}?v=2", "width": 64}, headers=headers)
    assert other.status_code == 422, other.text
    assert wait_finished(app, first.json()["task_id"])["status"] == "done"
    assert app.get("/api/tasks/").json()["pagination"]["total"] == 1


def status_key(app: TestClient, task_id: str) -> str:
    task = run_in_app(app, store_of(app).get, task_id)
    return task.source_key


def test_idempotency_keys_are_per_api_key_expire_after_a_day_and_are_freed_by_a_delete(tmp_path, clips):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{ALICE}\n{BOB}\n")
    data_dir = tmp_path / "data"
    with embedded_client(data_dir, env={"TRANSMUTE_API_KEYS": f"@{keys}"}) as client:
        alice = create_keyed(client, clips["short"], "k-1", api_key=ALICE, width=32).json()["task_id"]
        bob = create_keyed(client, clips["short"], "k-1", api_key=BOB, width=32).json()["task_id"]
        assert alice != bob
        assert create_keyed(client, clips["short"], "k-1", api_key=ALICE, width=32).json()["task_id"] == alice

        # A day later the key is free: another request with it is a new task, not a 422.
        async def age_keys() -> None:
            async with store_of(client).engine.begin() as conn:
                await conn.execute(update(IdempotencyRow).values(created_at=utcnow() - timedelta(hours=25)))

        run_in_app(client, age_keys)
        later = create_keyed(client, clips["short"], "k-1", api_key=ALICE, width=48)
        assert later.status_code == 200, later.text
        assert later.json()["task_id"] not in (alice, bob)

        # A deleted task frees its key.
        client.headers["X-API-Key"] = BOB
        assert wait_finished(client, bob)["status"] == "done"
        assert client.delete(f"/api/tasks/{bob}/").status_code == 200
        anew = create_keyed(client, clips["short"], "k-1", api_key=BOB, width=32)
        assert anew.status_code == 200 and anew.json()["task_id"] != bob
        assert "idempotent-replayed" not in anew.headers


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
def test_a_malformed_idempotency_key_is_a_400_naming_the_header(app, data_dir, clips, key):
    with clips["short"].open("rb") as handle:
        response = app.post("/api/tasks/create/", files={"file": ("clip.mp4", handle, "video/mp4")},
                            headers={"Idempotency-Key": key.encode()})
    assert response.status_code == 400, response.text
    assert response.json()["details"]["field"] == "Idempotency-Key"
    assert stored(data_dir, "sources/") == []


def test_concurrent_creates_with_one_key_make_one_task(app, data_dir, clips):
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: create_keyed(app, clips["short"], "burst", width=32), range(4)))
    assert {answer.status_code for answer in answers} <= {200, 409}, [answer.text for answer in answers]
    ids = {answer.json()["task_id"] for answer in answers if answer.status_code == 200}
    assert len(ids) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert "still being handled" in answer.json()["error"]
    # A 409 leaves the key to the request that holds it: sent again, the request answers that one task.
    again = create_keyed(app, clips["short"], "burst", width=32)
    assert again.status_code == 200 and again.json()["task_id"] in ids
    assert app.get("/api/tasks/").json()["pagination"]["total"] == 1
    wait_for(lambda: len(stored(data_dir, "sources/")) == 1, 10, lambda: f"one source: {stored(data_dir)}")


# ------------------------------------------------------------------------------------------ backpressure


def test_past_max_queued_a_create_is_a_503_with_retry_after_and_the_depth_is_a_gauge(data_dir, clips):
    with embedded_client(data_dir, threads=1, env={"TRANSMUTE_MAX_QUEUED": "2"}) as app:
        blocker = queue_upload(app, clips["long"], **SLOW)
        wait_for(lambda: status(app, blocker)["status"] == "running", 30, "the long task to run")
        waiting = [queue_upload(app, clips["short"], width=32) for _ in range(2)]
        wait_for(lambda: queue_depth(app) == 2, 10, "the gauge to count the two waiting tasks")

        refused = create_upload(app, clips["short"], width=32)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) > 0
        body = refused.json()
        assert body["success"] is False and "TRANSMUTE_MAX_QUEUED" in body["error"]
        assert body["details"]["max_queued"] == 2 and body["details"]["queued"] == 2
        assert len(stored(data_dir, "sources/")) == 3  # the refused upload was never stored
        assert app.get("/api/tasks/").json()["pagination"]["total"] == 3

        app.post(f"/api/tasks/{blocker}/cancel/")
        for task_id in waiting:
            assert wait_finished(app, task_id)["status"] == "done"
        wait_for(lambda: queue_depth(app) == 0, 10, "the gauge to drop to 0")
        assert create_upload(app, clips["short"], width=32).status_code == 200


def test_while_the_queue_is_full_a_replayed_create_still_answers_its_task_and_a_new_one_is_refused(data_dir, clips):
    with embedded_client(data_dir, threads=1, env={"TRANSMUTE_MAX_QUEUED": "1"}) as app:
        blocker = queue_upload(app, clips["long"], **SLOW)
        wait_for(lambda: status(app, blocker)["status"] == "running", 30, "the long task to run")
        first = create_keyed(app, clips["short"], "order-7", width=32)
        assert first.status_code == 200, first.text
        wait_for(lambda: queue_depth(app) == 1, 10, "the gauge to count the waiting task")

        # The client did not see the first answer and sends the request again: the queue is full, but this
        # is the task it already has.
        again = create_keyed(app, clips["short"], "order-7", width=32)
        assert again.status_code == 200, again.text
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        # Another request under the same key is still a 422, and a new key is refused with the 503.
        assert create_keyed(app, clips["short"], "order-7", width=64).status_code == 422
        refused = create_keyed(app, clips["short"], "order-8", width=32)
        assert refused.status_code == 503, refused.text
        assert "TRANSMUTE_MAX_QUEUED" in refused.json()["error"]
        assert len(stored(data_dir, "sources/")) == 2  # the blocker's and the first create's, nothing resent
        assert app.get("/api/tasks/").json()["pagination"]["total"] == 2
        app.post(f"/api/tasks/{blocker}/cancel/")
        assert wait_finished(app, first.json()["task_id"])["status"] == "done"
        # The refused key was not kept: once there is room it makes its task.
        assert create_keyed(app, clips["short"], "order-8", width=32).status_code == 200


# ------------------------------------------------------------------------------------------ disk


def test_a_create_is_a_507_when_the_data_folders_disk_is_short_of_space(data_dir, clips):
    free_mb = shutil.disk_usage(data_dir.parent).free / 2**20
    with embedded_client(data_dir, env={"TRANSMUTE_MIN_FREE_DISK_MB": str(int(free_mb * 2 + 1024))}) as app:
        for response in (create_upload(app, clips["short"], width=32),
                         app.post("/api/tasks/create/", json={"url": "http://127.0.0.1:9/clip.mp4"})):
            assert response.status_code == 507, response.text
            body = response.json()
            assert body["success"] is False and "TRANSMUTE_MIN_FREE_DISK_MB" in body["error"]
            assert body["details"]["setting"] == "TRANSMUTE_MIN_FREE_DISK_MB"
            assert 0 < body["details"]["free_disk_mb"] < body["details"]["min_free_disk_mb"]
        assert stored(data_dir) == []
        assert app.get("/api/tasks/").json()["pagination"]["total"] == 0
    with embedded_client(data_dir, env={"TRANSMUTE_MIN_FREE_DISK_MB": "1"}) as app:
        assert create_upload(app, clips["short"], width=32).status_code == 200


# ------------------------------------------------------------------------------------------ stalls


def test_a_stalled_run_is_stopped_tried_once_more_then_failed_saying_where(start_server, tmp_path, clips):
    # `stall` (tests/distributed/plugins) runs a real ffmpeg whose output pipe stops being read a few frames in.
    server = start_server(env={"PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]),
                               "TRANSMUTE_STALL_TIMEOUT": "4"}, workers=1)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        task_id = queue_upload(client, clips["long"], format="stall")
        seen: list[tuple[str, int]] = []

        def finished() -> bool:
            now = status(client, task_id)
            seen.append((now["status"], now["attempt"]))
            return now["status"] in ("done", "failed", "cancelled")

        wait_for(finished, 60, lambda: f"the stalled task to fail: {seen[-3:]}\n{server.log()}", interval=0.1)
        final = status(client, task_id)
        assert final["status"] == "failed" and final["attempt"] == 2, final
        assert ("running", 1) in seen and ("running", 2) in seen
        message = final["error_message"]
        where = re.search(r"stalled at (\d+)% of the conversion", message)
        # Where it stood: a few % in, or 0 when a loaded machine blocks ffmpeg before its first progress report.
        assert where and 0 <= int(where.group(1)) < 50 and "TRANSMUTE_STALL_TIMEOUT" in message, message
        wait_for(lambda: not live_ffmpeg_children(server.process.pid), 5, "the stalled ffmpeg to be gone")
        wait_for(lambda: not list((server.data_dir / "tmp").iterdir()), 5, "the scratch to go")
        assert stored(server.data_dir, "results/") == [] and stored(server.data_dir, "attempts/") == []
        assert len(stored(server.data_dir, "sources/")) == 1  # kept: the task can be retried
        metrics = client.get("/metrics").text
        assert sample(metrics, "transmute_conversions_total", format="stall", outcome="stalled") == 1
        assert sample(metrics, "transmute_conversions_total", format="stall", outcome="failed") == 1
