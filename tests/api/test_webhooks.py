"""Webhooks in embedded mode: signed per Standard Webhooks (checked with the `standardwebhooks` library), retried
with the same webhook-id while the receiver fails or is slow, stopped by a 4xx, shown in the status, checked at
create by the rules of a source URL, and never in the way of a conversion. The receiver runs on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.support.embedded import embedded_client
from tests.support.media import Media
from tests.support.tasks import create_upload, status, upload, wait_finished
from tests.support.waiting import wait_for
from tests.support.webhooks import HOLD, SECRET, receiving

FAST_RETRIES = {"TRANSMUTE_WEBHOOK_SECRET": SECRET, "TRANSMUTE_WEBHOOK_RETRY_DELAYS": "0.2,0.2,0.2,0.2",
                "TRANSMUTE_WEBHOOK_TIMEOUT": "1", "TRANSMUTE_WEBHOOK_PROGRESS_INTERVAL": "0"}


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[TestClient]:
    """An embedded app with a webhook secret and retries a fraction of a second apart."""
    with embedded_client(tmp_path / "data", env=FAST_RETRIES) as client:
        yield client


def webhook_of(client: TestClient, task_id: str) -> dict | None:
    return status(client, task_id)["webhook"]


def test_a_done_task_posts_its_status_signed_so_that_standardwebhooks_verifies_it(hooked: TestClient, media: Media):
    with receiving() as receiver:
        task_id = upload(hooked, media.clip, width=64, webhook_url=receiver.url)["task_id"]
        assert wait_finished(hooked, task_id)["status"] == "done"
        [delivery] = wait_for(lambda: receiver.of_task(task_id), 15, "the done webhook")

        body = delivery.verified()
        assert body["status"] == "done" and body["task_id"] == task_id and body["progress"] == 100
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.headers["webhook-id"] and delivery.headers["webhook-signature"].startswith("v1,")
        with pytest.raises(Exception, match="signature"):
            delivery.verified("whsec_" + "A" * 43)  # another secret does not verify it

        shown = wait_for(lambda: webhook_of(hooked, task_id), 10, "the delivery in the status")
        assert shown["event"] == "done" and shown["status_code"] == 200 and shown["attempts"] == 1
        assert shown["at"].endswith("Z")


def test_a_receiver_answering_500_then_429_then_too_slowly_gets_the_same_event_again_until_it_takes_it(
        hooked: TestClient, media: Media):
    with receiving([500, 429, HOLD]) as receiver:
        task_id = upload(hooked, media.clip, width=64, webhook_url=receiver.url)["task_id"]
        deliveries = wait_for(lambda: len(receiver.of_task(task_id)) >= 4 and receiver.of_task(task_id), 30,
                              lambda: f"four tries, got {len(receiver.of_task(task_id))}")
        receiver.release()

        assert len({delivery.headers["webhook-id"] for delivery in deliveries}) == 1
        for delivery in deliveries:
            assert delivery.verified()["status"] == "done"  # each try signed afresh
        shown = wait_for(lambda: (webhook_of(hooked, task_id) or {}).get("attempts") == 4
                         and webhook_of(hooked, task_id), 10, "the fourth try in the status")
        assert shown == {**shown, "event": "done", "status_code": 200}


def test_a_receiver_answering_400_is_not_tried_again(hooked: TestClient, media: Media):
    with receiving([400]) as receiver:
        refused = upload(hooked, media.clip, width=64, webhook_url=receiver.url)["task_id"]
        shown = wait_for(lambda: webhook_of(hooked, refused), 15, "the refused delivery in the status")
        assert shown["status_code"] == 400 and shown["attempts"] == 1

        # A later task's webhook arrives (its receiver answers 200) well after the 0.2 s a retry would have waited.
        later = upload(hooked, media.clip, width=64, webhook_url=receiver.url)["task_id"]
        wait_for(lambda: receiver.of_task(later), 15, "the later task's webhook")
        wait_for(lambda: (webhook_of(hooked, later) or {}).get("status_code") == 200, 10, "its delivery recorded")
        assert len(receiver.of_task(refused)) == 1
        assert webhook_of(hooked, refused)["attempts"] == 1


def test_progress_and_cancelled_are_delivered_when_asked_for(hooked: TestClient, media: Media):
    with receiving() as receiver:
        task_id = upload(hooked, media.longer, width=320, fps=30, high_quality="true", webhook_url=receiver.url,
                         webhook_events="progress,cancelled")["task_id"]
        wait_for(lambda: any(d.json["status"] == "running" for d in receiver.of_task(task_id)), 30,
                 "a progress webhook")
        response = hooked.post(f"/api/tasks/{task_id}/cancel/")
        assert response.status_code == 200, response.text
        wait_for(lambda: any(d.json["status"] == "cancelled" for d in receiver.of_task(task_id)), 15,
                 "the cancelled webhook")
        events = [d.verified()["status"] for d in receiver.of_task(task_id)]
        assert "done" not in events and events[-1] == "cancelled"
        ids = [d.headers["webhook-id"] for d in receiver.of_task(task_id)]
        assert len(set(ids)) == len(ids)  # each event its own id


def test_a_receiver_that_never_answers_delays_no_conversion(tmp_path: Path, media: Media):
    env = {**FAST_RETRIES, "TRANSMUTE_WEBHOOK_TIMEOUT": "60", "TRANSMUTE_WEBHOOK_THREADS": "1"}
    with receiving(then=HOLD) as receiver, embedded_client(tmp_path / "data", threads=1, env=env) as client:
        hooked = upload(client, media.clip, width=64, webhook_url=receiver.url)["task_id"]
        wait_for(lambda: receiver.of_task(hooked), 15, "the held delivery")
        # The delivery thread is held by the receiver; conversions go on regardless.
        others = [upload(client, media.clip, width=64, webhook_url=receiver.url)["task_id"] for _ in range(2)]
        for task_id in others:
            assert wait_finished(client, task_id)["status"] == "done"
        assert len(receiver.deliveries) == 1  # still held: nothing else was delivered meanwhile
        receiver.release()


def test_webhook_fields_are_checked_at_create(hooked: TestClient, media: Media, tmp_path: Path):
    def refused(**fields: str) -> dict:
        response = create_upload(hooked, media.clip, **fields)
        assert response.status_code == 400, response.text
        return response.json()

    body = refused(webhook_url="ftp://127.0.0.1/hook")
    assert body["success"] is False and body["details"]["field"] == "webhook_url"
    body = refused(webhook_url="http://127.0.0.1:9/hook", webhook_events="done,finished")
    assert body["details"]["field"] == "webhook_events" and "'finished'" in body["error"]
    assert refused(webhook_events="done")["details"]["field"] == "webhook_events"

    as_json = hooked.post("/api/tasks/create/", json={"url": "http://127.0.0.1:9/a.mp4",
                                                      "webhook_url": "http://127.0.0.1:9/hook",
                                                      "webhook_events": ["done", "progress"]})
    assert as_json.status_code == 200, as_json.text
    no_events = hooked.post("/api/tasks/create/", json={"url": "http://127.0.0.1:9/a.mp4",
                                                        "webhook_url": "http://127.0.0.1:9/hook", "webhook_events": []})
    assert no_events.status_code == 400 and no_events.json()["details"]["field"] == "webhook_events"

    no_secret = {"TRANSMUTE_WEBHOOK_SECRET": ""}
    with embedded_client(tmp_path / "plain", env=no_secret) as plain:
        response = create_upload(plain, media.clip, webhook_url="http://127.0.0.1:9/hook")
        assert response.status_code == 400 and response.json()["details"]["field"] == "webhook_url"
        assert "TRANSMUTE_WEBHOOK_SECRET" in response.json()["error"]


def test_a_private_webhook_url_is_refused_at_create_unless_private_urls_are_allowed(tmp_path: Path, media: Media):
    env = {"TRANSMUTE_WEBHOOK_SECRET": SECRET, "TRANSMUTE_ALLOW_PRIVATE_URLS": "false"}
    with embedded_client(tmp_path / "data", env=env) as client:
        for url in ("http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://0x7f000001/hook"):
            response = create_upload(client, media.clip, webhook_url=url)
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["details"]["field"] == "webhook_url" and "TRANSMUTE_ALLOW_PRIVATE_URLS" in body["error"]


def test_an_idempotency_key_replayed_with_another_webhook_is_a_422_and_with_the_same_one_the_same_task(
        hooked: TestClient, media: Media):
    with receiving() as receiver:
        def create(key: str, **fields: str):
            return create_upload(hooked, media.clip, headers={"Idempotency-Key": key}, width=64, **fields)

        first = create("hooked-1", webhook_url=receiver.url)
        assert first.status_code == 200, first.text
        again = create("hooked-1", webhook_url=receiver.url, webhook_events="cancelled,done,failed")  # the default
        assert again.status_code == 200 and again.json() == first.json(), again.text
        for other in ({"webhook_url": receiver.url + "?other"}, {"webhook_url": receiver.url,
                                                                 "webhook_events": "done,progress"}, {}):
            refused = create("hooked-1", **other)
            assert refused.status_code == 422, (other, refused.text)
            assert refused.json()["details"]["field"] == "Idempotency-Key"
        assert wait_finished(hooked, first.json()["task_id"])["status"] == "done"
        assert hooked.get("/api/tasks/").json()["pagination"]["total"] == 1
