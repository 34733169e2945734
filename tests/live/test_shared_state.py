"""Distributed mode with two gateway replicas on one PostgreSQL database: a stream on one replica follows changes
the other applies (through Redis, or the poller without it); with Redis the rate limit is counted once and
running tasks' state is read from Redis; and Redis going away mid-run degrades, never breaks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.support.cluster import postgres_database
from tests.support.live import Gateway, RedisServer, redis_server, serving
from tests.support.waiting import eventually
from transmute.core.run_mode import RunMode
from transmute.settings import BrokerConfig, DatabaseConfig, LiveConfig, Settings, StorageConfig


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@contextlib.asynccontextmanager
async def replicas(tmp_path: Path, database: str, redis_url: str | None,
                   broker_url: str = "") -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two replicas; `broker_url` (a RabbitMQ virtual host) for the routes that tell workers (a cancel, a delete)."""
    settings = Settings(storage=StorageConfig(data_dir=tmp_path), database=DatabaseConfig(url=database),
                        broker=BrokerConfig(url=broker_url),
                        live=LiveConfig(redis_url=redis_url, events_heartbeat=0.2, events_poll_interval=0.2))
    async with serving(settings, RunMode.DISTRIBUTED) as one, serving(settings, RunMode.DISTRIBUTED) as two:
        if redis_url is not None:
            for gateway in (one, two):
                await eventually(lambda g=gateway: _true(g.app.state.services.live.redis.subscribed), 10,
                                 "the replica to subscribe")
        yield one, two


async def _true(value: bool) -> bool:
    return value


async def next_event(events: AsyncIterator[ServerSentEvent]) -> ServerSentEvent:
    return await asyncio.wait_for(anext(events), 10)


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "poller"])
async def test_a_stream_on_one_replica_follows_the_changes_another_replica_applies(
        tmp_path: Path, database: str, own_redis: RedisServer, with_redis: bool) -> None:
    async with replicas(tmp_path, database, own_redis.url if with_redis else None) as (one, two):
        task_id = await one.new_task()
        async with httpx.AsyncClient(base_url=two.url, timeout=10) as client, \
                aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as source:
            events = source.aiter_sse()
            assert json.loads((await next_event(events)).data)["status"] == "queued"
            one.report(task_id, "progress", progress=25)
            assert json.loads((await next_event(events)).data)["progress"] == 25
            one.report(task_id, "failed", error="Not a video.")
            assert (await next_event(events)).event == "failed"


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "poller"])
async def test_a_running_task_deleted_through_another_replica_ends_the_stream_with_cancelled(
        tmp_path: Path, database: str, own_redis: RedisServer, rabbitmq_vhost: str, with_redis: bool) -> None:
    async with replicas(tmp_path, database, own_redis.url if with_redis else None, rabbitmq_vhost) as (one, two):
        task_id = await one.new_task()
        one.report(task_id, "progress", progress=30)
        async with httpx.AsyncClient(timeout=10) as client:
            await _until_progress(client, f"{two.url}/api/tasks/{task_id}/status/", 30)
            async with aconnect_sse(client, "GET", f"{two.url}/api/tasks/{task_id}/events/") as source:
                events = source.aiter_sse()
                running = json.loads((await next_event(events)).data)
                assert (await client.delete(f"{one.url}/api/tasks/{task_id}/")).status_code == 200
                final = await next_event(events)
                assert final.event == "cancelled"
                assert json.loads(final.data) | CANCELLED_FIELDS == running | CANCELLED_FIELDS
                assert _cancelled(json.loads(final.data), progress=30)
                with pytest.raises(StopAsyncIteration):
                    await next_event(events)


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "poller"])
async def test_a_task_that_disappears_before_it_finished_ends_the_stream_with_cancelled_as_it_stood(
        tmp_path: Path, database: str, own_redis: RedisServer, with_redis: bool) -> None:
    # No cancel comes first here (the record is removed, then the delete announced, as the delete route ends), so
    # the other replica learns of the delete alone: from the channel, or by its poller finding the task missing.
    async with replicas(tmp_path, database, own_redis.url if with_redis else None) as (one, two):
        task_id = await one.new_task()
        one.report(task_id, "progress", progress=45)
        async with httpx.AsyncClient(timeout=10) as client:
            await _until_progress(client, f"{two.url}/api/tasks/{task_id}/status/", 45)
            async with aconnect_sse(client, "GET", f"{two.url}/api/tasks/{task_id}/events/") as source:
                events = source.aiter_sse()
                running = await next_event(events)
                assert await one.app.state.services.store.delete(task_id)
                await one.app.state.services.live.forget(task_id)
                final = await next_event(events)
                status = json.loads(final.data)
                assert final.event == "cancelled" and int(final.id) > int(running.id)
                assert status | CANCELLED_FIELDS == json.loads(running.data) | CANCELLED_FIELDS
                assert _cancelled(status, progress=45)
                with pytest.raises(StopAsyncIteration):
                    await next_event(events)


CANCELLED_FIELDS = dict.fromkeys(("status", "is_finished", "is_active", "updated_at", "completed_at", "expires_at",
                                  "duration_seconds"))
"""What a cancel changes in a task's status JSON; the rest stays as the stream last knew it."""


def _cancelled(status: dict, progress: int) -> bool:
    return (status["status"], status["is_finished"], status["is_active"], status["progress"]) == (
        "cancelled", True, False, progress) and status["completed_at"] is not None


async def _until_progress(client: httpx.AsyncClient, url: str, progress: int) -> None:
    async def reached() -> bool:
        return (await client.get(url)).json().get("progress") == progress

    await eventually(reached, 10, f"progress {progress}")


async def test_with_redis_a_running_tasks_status_is_read_from_redis(
        tmp_path: Path, database: str, own_redis: RedisServer) -> None:
    async with replicas(tmp_path, database, own_redis.url) as (one, two):
        task_id = await one.new_task()
        one.report(task_id, "progress", progress=40)
        cached = redis.Redis(port=own_redis.port)
        await eventually(lambda: _true(cached.exists(f"transmute:task:{task_id}") == 1), 10, "the cached state")
        # Close the database's door on the task: a status read that reached PostgreSQL would now answer 404.
        await one.app.state.services.store.delete(task_id)
        async with httpx.AsyncClient(base_url=two.url, timeout=10) as client:
            status = (await client.get(f"/api/tasks/{task_id}/status/")).json()
        assert (status["status"], status["progress"]) == ("running", 40)


async def test_with_redis_the_rate_limit_is_counted_once_for_all_replicas(
        tmp_path: Path, database: str, own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSMUTE_RATE_LIMIT", "4/minute")
    async with replicas(tmp_path, database, own_redis.url) as (one, two):
        codes = []
        for gateway in (one, two, one, two, one, two):
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                codes.append((await client.get("/api/tasks/")).status_code)
    assert codes == [200, 200, 200, 200, 429, 429]


async def test_redis_stopped_mid_run_degrades_to_the_database_and_per_process_limits(
        tmp_path: Path, database: str, own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSMUTE_RATE_LIMIT", "100/minute")
    async with replicas(tmp_path, database, own_redis.url) as (one, two):
        task_id = await one.new_task()
        async with httpx.AsyncClient(base_url=two.url, timeout=10) as client, \
                aconnect_sse(client, "GET", f"/api/tasks/{task_id}/events/") as source:
            events = source.aiter_sse()
            await next_event(events)
            one.report(task_id, "progress", progress=10)
            assert json.loads((await next_event(events)).data)["progress"] == 10

            own_redis.stop()
            one.report(task_id, "progress", progress=55)
            # The open stream hears it anyway (the poller stands in for the channel)...
            assert json.loads((await next_event(events)).data)["progress"] == 55
            # ...and every route answers from the database, never a 503.
            for gateway in (one, two):
                response = await client.get(f"{gateway.url}/api/tasks/{task_id}/status/")
                assert (response.status_code, response.json()["progress"]) == (200, 55)
                assert (await client.get(f"{gateway.url}/api/tasks/")).status_code == 200
            async with aconnect_sse(client, "GET", f"{one.url}/api/tasks/{task_id}/events/") as other:
                assert json.loads((await next_event(other.aiter_sse())).data)["progress"] == 55

            own_redis.start()  # back on the same port: the replicas use it again
            for gateway in (one, two):
                await eventually(lambda g=gateway: _true(g.app.state.services.live.redis.subscribed), 15,
                                 "a new subscription")
            one.report(task_id, "failed", error="Stopped.")
            final = await asyncio.wait_for(anext(events), 20)
            assert (final.event, json.loads(final.data)["error_message"]) == ("failed", "Stopped.")


async def test_while_redis_is_away_each_replica_still_counts_the_limit_on_its_own(
        tmp_path: Path, database: str, own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSMUTE_RATE_LIMIT", "3/minute")
    async with replicas(tmp_path, database, own_redis.url) as (one, two):
        own_redis.stop()
        async with httpx.AsyncClient(timeout=10) as client:
            on_one = [(await client.get(f"{one.url}/api/tasks/")).status_code for _ in range(4)]
            on_two = [(await client.get(f"{two.url}/api/tasks/")).status_code for _ in range(4)]
    assert on_one == on_two == [200, 200, 200, 429]
