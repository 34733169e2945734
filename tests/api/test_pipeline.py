"""The pipeline behind the routes: the gateway records and publishes, workers report events over the broker,
and the projector applies them to the store idempotently (by seq), a finished task never going back."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient

from tests.support.embedded import run_in_app, store_of
from tests.support.media import Media
from tests.support.tasks import upload, wait_finished
from transmute.core.models import EVENTS_QUEUE, PROJECT_EVENT_ACTOR, TaskEvent, next_seq, utcnow
from transmute.services.broker import send


def report(api: TestClient, event: TaskEvent) -> None:
    """Send an event as a worker does, and wait until the projector has consumed it."""
    broker = api.app.state.events_broker  # the projector's broker (its own one in embedded mode)
    send(broker, EVENTS_QUEUE, PROJECT_EVENT_ACTOR, msgspec.to_builtins(event))
    broker.join(EVENTS_QUEUE, timeout=10_000)


def new_task(api: TestClient) -> str:
    return run_in_app(api, store_of(api).create, target_format="gif", source_type="url", params={"format": "gif"},
                      source_url="http://127.0.0.1:9/never.mp4").id


def status_of(api: TestClient, task_id: str) -> dict:
    return api.get(f"/api/tasks/{task_id}/status/").json()


def test_events_move_a_task_through_running_to_done_as_the_status_shows(api: TestClient) -> None:
    task_id = new_task(api)
    report(api, TaskEvent(task_id=task_id, seq=next_seq(), kind="started", at=utcnow(), file_size=1234))
    status = status_of(api, task_id)
    assert (status["status"], status["progress"], status["metadata"]["file_size"]) == ("running", 0, 1234)
    report(api, TaskEvent(task_id=task_id, seq=next_seq(), kind="progress", at=utcnow(), progress=37))
    assert status_of(api, task_id)["progress"] == 37
    report(api, TaskEvent(task_id=task_id, seq=next_seq(), kind="failed", at=utcnow(), error="Not a video."))
    status = status_of(api, task_id)
    assert (status["status"], status["error_message"], status["is_finished"]) == ("failed", "Not a video.", True)


def test_a_late_event_with_an_older_seq_changes_nothing(api: TestClient) -> None:
    task_id = new_task(api)
    older, newer = next_seq(), next_seq()
    report(api, TaskEvent(task_id=task_id, seq=newer, kind="progress", at=utcnow(), progress=60))
    report(api, TaskEvent(task_id=task_id, seq=older, kind="progress", at=utcnow(), progress=20))
    report(api, TaskEvent(task_id=task_id, seq=newer, kind="progress", at=utcnow(), progress=10))  # a duplicate seq
    assert status_of(api, task_id)["progress"] == 60


def test_a_finished_task_never_goes_back_to_running(api: TestClient, done_task: dict) -> None:
    task_id = done_task["task_id"]
    for kind in ("started", "progress", "failed"):
        report(api, TaskEvent(task_id=task_id, seq=next_seq(), kind=kind, at=utcnow(), progress=5, error="late"))
    status = status_of(api, task_id)
    assert (status["status"], status["progress"], status["error_message"]) == ("done", 100, "")
    assert status["completed_at"] == done_task["completed_at"]


def test_an_event_for_an_unknown_task_is_dropped_quietly(api: TestClient) -> None:
    report(api, TaskEvent(task_id="987654", seq=next_seq(), kind="progress", at=utcnow(), progress=5))
    report(api, TaskEvent(task_id="not-an-id", seq=next_seq(), kind="progress", at=utcnow(), progress=5))
    assert api.get("/api/tasks/987654/status/").status_code == 404


def test_uploads_are_limited_to_500_mb_by_default(api: TestClient) -> None:
    assert api.app.state.services.settings.limits.max_upload_mb == 500


def test_an_upload_is_probed_once_at_create_and_the_worker_does_not_read_it_again(
        app: TestClient, media: Media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs, folder = tmp_path / "ffprobe-runs", tmp_path / "bin"
    folder.mkdir()
    counting = folder / "ffprobe"
    counting.write_text(f"#!/bin/sh\necho probed >> {shlex.quote(str(runs))}\n"
                        f'exec {shlex.quote(shutil.which("ffprobe") or "ffprobe")} "$@"\n')
    counting.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    task_id = upload(app, media.clip, format="gif", width=80)["task_id"]
    status = wait_finished(app, task_id)
    assert (status["status"], status["error_message"]) == ("done", "")
    assert runs.read_text().splitlines() == ["probed"]
