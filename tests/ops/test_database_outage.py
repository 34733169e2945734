"""The gateway while its database is away: clear 503s, and no worker event lost (tasks never stay running)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.embedded import embedded_client
from tests.support.proxy import TcpProxy
from tests.support.tasks import upload, wait_finished
from tests.support.waiting import wait_for
from transmute.services.api.projector import retry_event


def test_while_the_database_is_unreachable_the_task_routes_answer_503_and_recover_after(
        tmp_path: Path, database: str, small_clip: Path):
    proxy = TcpProxy("127.0.0.1:5432")
    url = database.replace("127.0.0.1:5432", proxy.address)
    source = small_clip
    with embedded_client(tmp_path / "data", env={"TRANSMUTE_DATABASE_URL": url}) as client:
        task_id = upload(client, source, format="gif")["task_id"]
        routes = [f"/api/tasks/{task_id}/status/", f"/api/tasks/{task_id}/result/", "/api/tasks/"]
        proxy.cut()
        answers = [client.get(route) for route in routes]
        with source.open("rb") as handle:
            answers.append(client.post("/api/tasks/create/", files={"file": ("clip.mp4", handle, "video/mp4")},
                                       data={"format": "gif"}))
        sources = tmp_path / "data" / "objects" / "sources"
        assert len(list(sources.iterdir())) == 1, "the upload of the refused create is left in the storage"
        for answer in answers:
            assert answer.status_code == 503, (answer.request.url, answer.text)
            assert answer.json()["success"] is False
            assert "task store (database)" in answer.json()["error"]
            assert answer.headers["Retry-After"] == "5"
        proxy.restore()
        assert client.get(routes[0]).status_code == 200
        assert [task["task_id"] for task in client.get(routes[2]).json()["tasks"]] == [task_id]


def test_the_events_of_a_conversion_that_ends_while_the_database_is_away_are_applied_once_it_is_back(
        tmp_path: Path, database: str, small_clip: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="dramatiq.middleware.retries")
    proxy = TcpProxy("127.0.0.1:5432")
    url = database.replace("127.0.0.1:5432", proxy.address)
    with embedded_client(tmp_path / "data", env={"TRANSMUTE_DATABASE_URL": url}) as client:
        task_id = upload(client, small_clip, width=64, fps=5)["task_id"]
        proxy.cut()
        results = tmp_path / "data" / "objects" / "results"
        # The worker converts without the database; its events fail, and Dramatiq tries them again.
        wait_for(lambda: any(results.glob(f"task_{task_id}_*")), 30, "the conversion to finish", interval=0.1)
        wait_for(lambda: retried(caplog) >= 3, 60, "the events to be tried again")
        proxy.restore()
        status = wait_finished(client, task_id)
        assert status["status"] == "done", status
        assert client.get(f"/api/tasks/{task_id}/download/").content[:6] == b"GIF89a"


def retried(caplog: pytest.LogCaptureFixture) -> int:
    """How many times Dramatiq has scheduled a failed message to be tried again."""
    return sum(record.getMessage().startswith("Retrying message") for record in caplog.records)


def test_an_event_is_tried_again_for_as_long_as_the_database_is_unreachable_and_20_times_otherwise():
    assert retry_event(500, ConnectionRefusedError(111, "Connect call failed"))
    assert retry_event(500, TimeoutError())
    assert retry_event(19, ValueError("a bug"))
    assert not retry_event(20, ValueError("a bug"))
