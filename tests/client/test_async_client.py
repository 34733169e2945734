"""`transmute.client.AsyncClient` against a real `transmute serve`: the same calls as `Client`, awaited."""

from __future__ import annotations

import zipfile

import pytest

from tests.support.api_proxy import api_proxy
from tests.support.servers import TASK_DEADLINE
from transmute.client import AsyncClient, TransmuteError


async def test_tasks_are_created_from_a_path_a_file_and_a_url_waited_for_and_downloaded(server, clips, clip_urls,
                                                                                         tmp_path):
    async with AsyncClient(server.url, poll_interval=0.1) as client:
        with clips["small"].open("rb") as file:
            created = [await client.create(clips["small"], width=48), await client.create(file, width=32),
                       await client.create(clip_urls["small"], format="webp", width=32)]
        finals = [await client.wait(task.task_id, timeout=TASK_DEADLINE) for task in created]
        assert [final.status for final in finals] == ["done"] * 3
        assert [final.metadata.source_type for final in finals] == ["file", "file", "url"]

        written = await client.download(created[0].task_id, tmp_path)
        assert written is not None and written.read_bytes()[:6] == b"GIF89a"
        archive = await client.batch_download([task.task_id for task in created], tmp_path / "all.zip")
        assert len(zipfile.ZipFile(archive).namelist()) == 3

        listing = await client.list(format="webp", per_page=100)
        assert created[2].task_id in {task.task_id for task in listing.tasks}


async def test_a_queued_task_is_cancelled_retried_and_deleted(server, clips):
    async with AsyncClient(server.url, poll_interval=0.1) as client:
        busy = await client.create(clips["video"], keep_original_size=True, high_quality=True, fps=30)
        waiting = await client.create(clips["small"], width=32)
        assert (await client.cancel(waiting.task_id)).status == "cancelled"
        assert (await client.cancel(busy.task_id)).status == "cancelled"
        assert (await client.retry(waiting.task_id)).attempt == 2
        assert (await client.wait(waiting.task_id, timeout=TASK_DEADLINE)).status == "done"
        assert (await client.delete(busy.task_id)).task_id == busy.task_id
        with pytest.raises(TransmuteError) as gone:
            await client.status(busy.task_id)
        assert gone.value.status_code == 404 and busy.task_id in gone.value.message


async def test_an_error_is_a_transmute_error_and_a_503_is_sent_again(server, clips):
    with api_proxy(server.url, unavailable=1) as (base, proxy):
        async with AsyncClient(base) as client:
            with pytest.raises(TransmuteError) as bad:
                await client.create(clips["small"], fps=500)
            assert bad.value.status_code == 400 and bad.value.details == {"field": "fps"}
            assert proxy.count("POST /api/tasks/create/") == 2  # a 503, then the real answer


async def test_wait_follows_the_event_stream_or_polls_without_one(server, clips):
    for events, polls in (("contract", False), ("absent", True)):
        with api_proxy(server.url, events=events) as (base, proxy):
            async with AsyncClient(base, poll_interval=0.05) as client:
                created = await client.create(clips["small"], width=32)
                assert (await client.wait(created.task_id, timeout=TASK_DEADLINE)).status == "done"
                assert proxy.count("/events/") == 1
                assert (proxy.count("/status/") > 0) is polls
