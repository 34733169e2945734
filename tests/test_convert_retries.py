"""The convert actor's retry policy: an attempt that raises for a reason other than the input is tried again
by Dramatiq, and on the last attempt the task fails with a sentence naming the attempts."""

from __future__ import annotations

import logging

import dramatiq
import msgspec
import pytest

from transmute.core.errors import StorageError
from transmute.core.models import CONVERT_ACTOR, CONVERT_QUEUE, EVENTS_QUEUE, ConvertMessage
from transmute.services.broker import create_broker, send
from transmute.services.worker.convert import Converter, register_convert_actor
from transmute.services.worker.retry_policy import ConversionRetries
from transmute.settings import BrokerConfig, LimitsConfig
from transmute.storage.filesystem import FilesystemStorage


class StorageDown(FilesystemStorage):
    """Object storage that answers nothing about results: every attempt fails when it looks one up."""

    def size(self, key: str) -> int | None:
        raise StorageError("The object storage is unreachable.")


def test_dramatiq_is_told_to_retry_up_to_max_retries_with_back_off():
    policy = ConversionRetries(max_retries=3)
    options = policy.actor_options()
    assert (options["max_retries"], options["min_backoff"], options["max_backoff"]) == (3, 1_000, 30_000)
    assert [options["retry_when"](retries, RuntimeError()) for retries in range(5)] == [True, True, True, False, False]


def test_outside_a_dramatiq_worker_an_attempt_is_the_last():
    policy = ConversionRetries(max_retries=3)
    assert policy.attempt() == 4
    assert not policy.will_retry(policy.attempt(), RuntimeError())


@pytest.fixture
def broker():
    broker = create_broker(BrokerConfig(url=""))
    yield broker
    broker.close()


def test_a_failing_attempt_is_retried_then_the_task_fails_naming_the_attempts(broker, tmp_path, caplog):
    converter = Converter(broker=broker, storage=StorageDown(tmp_path / "objects"),
                          limits=LimitsConfig(max_retries=1, storage_retry_seconds=0), scratch_dir=tmp_path)
    register_convert_actor(converter)
    message = ConvertMessage(task_id="t1", params={"format": "gif"}, source_type="file", source_key="sources/t1")
    worker = dramatiq.Worker(broker, queues={CONVERT_QUEUE}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        with caplog.at_level(logging.INFO, logger="transmute.worker"):
            send(broker, CONVERT_QUEUE, CONVERT_ACTOR, msgspec.to_builtins(message))
            broker.join(CONVERT_QUEUE, timeout=30_000)
    finally:
        worker.stop()
    lines = [record.getMessage() for record in caplog.records if record.name == "transmute.worker"]
    assert "task t1: attempt 1 failed, will retry: The object storage is unreachable." in lines
    assert "task t1 failed after 2 attempts" in lines
    events = [dramatiq.Message.decode(data).args[0] for data in broker.queues[EVENTS_QUEUE].queue]
    failed = [event for event in events if event["kind"] == "failed"]
    assert [event["error"] for event in failed] == [
        "The conversion failed after 2 attempts: The object storage is unreachable."]
    assert not broker.dead_letters  # the last attempt fails the task, not the message
