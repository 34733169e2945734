"""`transmute.client.Client` against a real `transmute serve`: every call of the task API, typed answers, errors
as TransmuteError, 503s sent again, and `wait` over the event stream or, without one, the status route."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.support.api_proxy import api_proxy
from tests.support.servers import TASK_DEADLINE, KeyedServer, Server
from transmute.client import Client, StatusResponse, TransmuteError, WaitTimeout
from transmute.core.models import TaskStatus


@pytest.fixture
def client(server: Server) -> Client:
    with Client(server.url, poll_interval=0.1) as client:
        yield client


def test_a_task_created_from_a_path_is_waited_for_and_downloaded_under_its_own_name(client, clips, tmp_path):
    created = client.create(clips["small"], width=64, fps=5, grayscale=True)
    assert created.status == "queued"

    seen: list[StatusResponse] = []
    final = client.wait(created.task_id, timeout=TASK_DEADLINE, on_progress=seen.append)
    assert final.state is TaskStatus.DONE and final.progress == 100
    assert final.metadata.conversion_params["width"] == 64 and final.metadata.conversion_params["grayscale"] is True
    assert seen[-1] == final

    written = client.download(created.task_id, tmp_path)
    assert written is not None and written.parent == tmp_path and written.suffix == ".gif"
    assert written.read_bytes()[:6] == b"GIF89a"
    assert not list(tmp_path.glob("*.part"))


def test_a_task_is_created_from_an_open_file_and_from_a_url(client, clips, clip_urls):
    with clips["small"].open("rb") as file:
        from_file = client.create(file, format="webp", width=48)
    from_url = client.create(clip_urls["small"], width=48)

    for created, source_type in ((from_file, "file"), (from_url, "url")):
        final = client.wait(created.task_id, timeout=TASK_DEADLINE)
        assert final.status == "done", final.error_message
        assert final.metadata.source_type == source_type
    assert client.status(from_file.task_id).metadata.target_format == "webp"
    assert client.status(from_file.task_id).metadata.original_filename == clips["small"].name


def test_the_upload_progress_is_reported_up_to_the_whole_file(client, clips):
    reports: list[tuple[int, int | None]] = []
    created = client.create(clips["small"], width=32, upload_progress=lambda sent, total: reports.append((sent, total)))
    size = clips["small"].stat().st_size
    assert reports[-1] == (size, size)
    client.wait(created.task_id, timeout=TASK_DEADLINE)


def test_a_batch_download_is_one_zip_of_the_done_tasks(client, clips, tmp_path):
    ids = [client.create(clips["small"], width=32 + 16 * index).task_id for index in range(2)]
    for task_id in ids:
        client.wait(task_id, timeout=TASK_DEADLINE)

    archive = client.batch_download(ids, tmp_path / "both.zip")
    assert archive == tmp_path / "both.zip"
    with zipfile.ZipFile(archive) as opened:
        assert len(opened.namelist()) == 2
        assert all(opened.read(name)[:6] == b"GIF89a" for name in opened.namelist())

    into_memory = io.BytesIO()
    assert client.batch_download(ids, into_memory) is None
    assert zipfile.ZipFile(into_memory).namelist() == zipfile.ZipFile(archive).namelist()


def test_the_listing_is_filtered_by_status_and_format(client, clips):
    created = client.create(clips["small"], format="png", width=32)
    client.wait(created.task_id, timeout=TASK_DEADLINE)

    listing = client.list(status="done", format="png", per_page=100)
    assert created.task_id in {task.task_id for task in listing.tasks}
    assert all(task.status == "done" and task.target_format == "png" for task in listing.tasks)
    assert listing.pagination.total == len(listing.tasks)


def test_a_queued_task_is_cancelled_retried_and_deleted(client, clips):
    # One worker thread: the first (slow) task holds it, so the second waits in the queue.
    busy = client.create(clips["video"], keep_original_size=True, high_quality=True, fps=30)
    waiting = client.create(clips["small"], width=32)

    cancelled = client.cancel(waiting.task_id)
    assert cancelled.status == "cancelled" and cancelled.is_finished
    with pytest.raises(TransmuteError) as refused:
        client.download(waiting.task_id)
    assert refused.value.status_code == 409 and "cancelled" in refused.value.message
    assert client.cancel(busy.task_id).status == "cancelled"

    retried = client.retry(waiting.task_id)
    assert retried.status == "queued" and retried.attempt == 2
    assert client.wait(waiting.task_id, timeout=TASK_DEADLINE).status == "done"

    deleted = client.delete(busy.task_id)
    assert deleted.task_id == busy.task_id
    with pytest.raises(TransmuteError) as gone:
        client.status(busy.task_id)
    assert gone.value.status_code == 404


def test_an_api_error_is_one_transmute_error_with_its_status_code_message_and_details(client, clips):
    with pytest.raises(TransmuteError) as bad:
        client.create(clips["small"], width=9)
    assert bad.value.status_code == 400
    assert "width" in bad.value.message and bad.value.details == {"field": "width"}

    with pytest.raises(TransmuteError) as unknown:
        client.status("424242")
    assert unknown.value.status_code == 404 and "424242" in unknown.value.message


def test_a_source_that_cannot_be_converted_ends_failed_with_the_servers_reason(client, clip_urls):
    created = client.create(clip_urls["text"])
    final = client.wait(created.task_id, timeout=TASK_DEADLINE)
    assert final.state is TaskStatus.FAILED and final.error_message
    with pytest.raises(TransmuteError) as refused:
        client.download(created.task_id)
    assert refused.value.status_code == 409 and final.error_message in refused.value.message


def test_no_server_at_the_address_is_a_transmute_error_without_status_code(tmp_path):
    from tests.support.net import free_port

    with Client(f"http://127.0.0.1:{free_port()}") as client, pytest.raises(TransmuteError) as unreachable:
        client.list()
    assert unreachable.value.status_code is None and "Could not reach" in unreachable.value.message


def test_a_503_is_sent_again_after_its_retry_after(server, clips):
    with api_proxy(server.url, unavailable=2) as (base, proxy), Client(base) as client:
        created = client.create(clips["small"], width=32)
        assert proxy.count("POST /api/tasks/create/") == 3
        assert client.wait(created.task_id, timeout=TASK_DEADLINE).status == "done"


def test_a_503_is_raised_once_the_retries_are_spent(server):
    with api_proxy(server.url, unavailable=5) as (base, proxy), Client(base, max_retries=1) as client:
        with pytest.raises(TransmuteError) as unavailable:
            client.list()
        assert unavailable.value.status_code == 503 and "retry" in unavailable.value.message
        assert proxy.count("GET /api/tasks/") == 2


def test_wait_follows_the_event_stream_and_does_not_poll(server, clips):
    with api_proxy(server.url, events="contract") as (base, proxy), Client(base, poll_interval=0.05) as client:
        created = client.create(clips["small"], width=64)
        seen: list[str] = []
        final = client.wait(created.task_id, timeout=TASK_DEADLINE, on_progress=lambda s: seen.append(s.status))
        assert final.status == "done" and seen[-1] == "done"
        assert proxy.count("/events/") == 1
        assert proxy.count("/status/") == 0


def test_a_dropped_event_stream_is_resumed_from_its_last_event_id(server, clips):
    with api_proxy(server.url, events="contract", cut_streams=1) as (base, proxy), Client(base) as client:
        created = client.create(clips["small"], width=64)
        assert client.wait(created.task_id, timeout=TASK_DEADLINE).status == "done"
        assert proxy.last_event_ids[:2] == [None, "1"]
        assert proxy.count("/status/") == 0


def test_wait_polls_the_status_when_the_server_has_no_event_stream(server, clips):
    with api_proxy(server.url, events="absent") as (base, proxy), Client(base, poll_interval=0.05) as client:
        created = client.create(clips["small"], width=64)
        assert client.wait(created.task_id, timeout=TASK_DEADLINE).status == "done"
        assert proxy.count("/events/") == 1
        assert proxy.count("/status/") >= 1


def test_wait_gives_up_at_its_timeout_with_the_last_status(client, clips):
    # 12 s of 320x240 at 30 fps: seconds of work, far past the wait's 0.2 s (3 s of it took 0.3 s on a fast machine)
    busy = client.create(clips["video"], keep_original_size=True, high_quality=True, fps=30, speed=0.25)
    with pytest.raises(WaitTimeout) as late:
        client.wait(busy.task_id, timeout=0.2)
    assert late.value.last is not None and late.value.last.task_id == busy.task_id
    client.cancel(busy.task_id)


def test_an_api_key_is_sent_as_a_bearer_token(tmp_path: Path):
    key = "client-test-key-0123456789"
    server = KeyedServer(data_dir=tmp_path / "data", log_path=tmp_path / "serve.log",
                         env={"TRANSMUTE_API_KEYS": key})
    try:
        server.start()
        with Client(server.url) as anonymous, pytest.raises(TransmuteError) as refused:
            anonymous.list()
        assert refused.value.status_code == 401 and "API key" in refused.value.message
        with Client(server.url, api_key=key) as client:
            assert client.list().pagination.total == 0
    finally:
        server.kill_group()
