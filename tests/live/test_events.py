"""GET /api/tasks/{id}/events/ on one gateway process: the events a task's changes make, heartbeats, resuming,
the end of the stream, 404 before it starts, key scoping and the cap on open streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.support.live import Gateway, serving
from transmute.core.models import TaskResult
from transmute.core.run_mode import RunMode
from transmute.settings import DatabaseConfig, LiveConfig, Settings, StorageConfig

HEARTBEAT = 0.2
"""Seconds between heartbeats in these tests (15 in production)."""
KEY = "k" * 20


def settings_on(folder: Path, **live: object) -> Settings:
    return Settings(storage=StorageConfig(data_dir=folder),
                    database=DatabaseConfig(url=f"sqlite+aiosqlite:///{folder / 'transmute.db'}"),
                    live=LiveConfig(**{"events_heartbeat": HEARTBEAT, **live}))


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with serving(settings_on(tmp_path), RunMode.EMBEDDED) as gateway:
        yield gateway


async def next_event(events: AsyncIterator[ServerSentEvent]) -> ServerSentEvent:
    return await asyncio.wait_for(anext(events), 10)


def result() -> TaskResult:
    return TaskResult(key="results/x.gif", filename="x.gif", size=10, mime_type="image/gif", format="gif")


async def test_a_stream_sends_each_change_as_progress_then_done_and_ends(gateway: Gateway) -> None:
    task_id = await gateway.new_task()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client, \
            aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = source.aiter_sse()
        first = await next_event(events)
        assert (first.event, json.loads(first.data)["status"]) == ("progress", "queued")
        gateway.report(task_id, "started")
        started = await next_event(events)
        assert (started.event, json.loads(started.data)["status"]) == ("progress", "running")
        gateway.report(task_id, "progress", progress=40)
        moved = await next_event(events)
        assert json.loads(moved.data)["progress"] == 40
        gateway.report(task_id, "done", result=result())
        done = await next_event(events)
        assert done.event == "done"
        assert int(first.id) < int(started.id) < int(moved.id) < int(done.id)
        with pytest.raises(StopAsyncIteration):
            await next_event(events)  # the stream ended


async def test_each_events_data_is_exactly_the_status_routes_answer(gateway: Gateway) -> None:
    task_id = await gateway.new_task()
    gateway.report(task_id, "done", result=result())
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        async with aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as source:
            sent = [event async for event in source.aiter_sse()]
        status = (await client.get(f"/api/tasks/{task_id}/status/")).json()
    assert [event.event for event in sent] == ["done"]
    assert json.loads(sent[0].data) == status


async def test_a_quiet_stream_gets_heartbeat_comments(gateway: Gateway) -> None:
    task_id = await gateway.new_task()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client, \
            client.stream("GET", f"/api/tasks/{task_id}/events/") as response:
        seen = ""
        async for chunk in response.aiter_text():
            seen += chunk
            if seen.count(": heartbeat") >= 2:
                break
    assert seen.count("event: progress") == 1  # one state, then only heartbeats


async def test_resuming_with_the_last_event_id_sends_only_what_is_newer(gateway: Gateway) -> None:
    task_id = await gateway.new_task()
    gateway.report(task_id, "progress", progress=30)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        async with aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as source:
            seen = await next_event(source.aiter_sse())
        assert json.loads(seen.data)["progress"] == 30
        async with aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/",
                                headers={"Last-Event-ID": seen.id}) as source:
            events = source.aiter_sse()
            gateway.report(task_id, "progress", progress=60)
            resumed = await next_event(events)  # not the 30% it had already
            assert json.loads(resumed.data)["progress"] == 60


async def test_a_finished_tasks_stream_sends_its_final_event_at_once_and_ends(gateway: Gateway) -> None:
    task_id = await gateway.new_task()
    gateway.report(task_id, "failed", error="Not a video.")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        await _until_status(client, task_id, "failed")
        async with aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/",
                                headers={"Last-Event-ID": "99999999999999999999999"}) as source:
            sent = [event async for event in source.aiter_sse()]
    assert [event.event for event in sent] == ["failed"]
    assert json.loads(sent[0].data)["error_message"] == "Not a video."


async def test_a_cancel_ends_the_stream_with_a_cancelled_event(gateway: Gateway) -> None:
    task_id = await gateway.new_task()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client, \
            aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as source:
        events = source.aiter_sse()
        assert (await next_event(events)).event == "progress"
        assert (await client.post(f"/api/tasks/{task_id}/cancel/")).status_code == 200
        assert (await next_event(events)).event == "cancelled"


async def test_a_delete_of_a_running_task_ends_the_stream_with_a_cancelled_event(gateway: Gateway) -> None:
    task_id = await gateway.new_task()
    gateway.report(task_id, "progress", progress=35)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        await _until_status(client, task_id, "running")
        async with aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as source:
            events = source.aiter_sse()
            assert json.loads((await next_event(events)).data)["progress"] == 35
            assert (await client.delete(f"/api/tasks/{task_id}/")).status_code == 200
            final = await next_event(events)
            status = json.loads(final.data)
            assert (final.event, status["status"], status["progress"]) == ("cancelled", "cancelled", 35)
            with pytest.raises(StopAsyncIteration):
                await next_event(events)


async def test_an_unknown_task_is_a_404_json_before_any_stream(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        response = await client.get("/api/tasks/424242/events/")
    assert response.status_code == 404
    assert response.json()["success"] is False and "424242" in response.json()["error"]


async def test_with_api_keys_a_key_streams_only_its_own_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSMUTE_API_KEYS", f"{KEY},{'o' * 20}")
    async with serving(settings_on(tmp_path), RunMode.EMBEDDED) as gateway:
        from transmute.services.api.security import owner_id

        task_id = await gateway.new_task(owner=owner_id(KEY))
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            assert (await client.get(f"/api/tasks/{task_id}/events/")).status_code == 401
            other = await client.get(f"/api/tasks/{task_id}/events/", headers={"X-API-Key": "o" * 20})
            assert other.status_code == 404
            gateway.report(task_id, "cancelled")
            await _until_status(client, task_id, "cancelled", headers={"X-API-Key": KEY})
            async with aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/",
                                    headers={"X-API-Key": KEY}) as source:
                assert [event.event async for event in source.aiter_sse()] == ["cancelled"]


async def test_past_the_cap_of_open_streams_a_503_with_retry_after(tmp_path: Path) -> None:
    async with serving(settings_on(tmp_path, events_max_streams=2), RunMode.EMBEDDED) as gateway:
        task_id = await gateway.new_task()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            async with aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as one, \
                    aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as two:
                # Each stream's iterator is kept: a dropped one, once collected, closes its connection.
                events_one, events_two = one.aiter_sse(), two.aiter_sse()
                await next_event(events_one)
                await next_event(events_two)
                # Bounded: were the cap not reached, this would be a stream whose heartbeats keep it open.
                refused = await asyncio.wait_for(client.get(f"/api/tasks/{task_id}/events/"), 10)
                assert refused.status_code == 503
                assert int(refused.headers["retry-after"]) > 0
                assert "limit" in refused.json()["error"]
            # Closed streams free their places.
            await _until(lambda: gateway.app.state.services.live.hub.open_streams == 0)
            async with aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as three:
                assert (await next_event(three.aiter_sse())).event == "progress"


async def _until_status(client: httpx.AsyncClient, task_id: str, status: str, **kwargs: object) -> None:
    async def reached() -> bool:
        return (await client.get(f"/api/tasks/{task_id}/status/", **kwargs)).json().get("status") == status

    await _until(reached)


async def _until(condition: object) -> None:
    from tests.support.waiting import eventually

    async def check() -> bool:
        value = condition()  # type: ignore[operator]
        return await value if asyncio.iscoroutine(value) else bool(value)

    await eventually(check, 10, "the condition")


async def test_a_stopping_gateway_ends_its_open_streams_at_once(tmp_path: Path) -> None:
    async with serving(settings_on(tmp_path, events_heartbeat=60), RunMode.EMBEDDED) as gateway:
        task_id = await gateway.new_task()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client, \
                aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as source:
            events = source.aiter_sse()
            await next_event(events)
            gateway.stop()
            # Ended well before the 10 s of graceful shutdown (the client then reconnects elsewhere).
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(anext(events), 5)


async def test_a_quiet_stream_outlives_the_client_idle_timeout_of_uploads(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSMUTE_CLIENT_IDLE_TIMEOUT", "0.3")
    async with serving(settings_on(tmp_path), RunMode.EMBEDDED) as gateway:
        task_id = await gateway.new_task()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client, \
                client.stream("GET", f"/api/tasks/{task_id}/events/") as response:
            seen = ""
            async for chunk in response.aiter_text():
                seen += chunk
                if seen.count(": heartbeat") == 4:  # quiet for longer than the idle timeout
                    gateway.report(task_id, "progress", progress=70)
                if '"progress":70' in seen:
                    break
    assert seen.count("event: progress") == 2
