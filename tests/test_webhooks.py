"""The webhook actor on its own (in-process brokers, a receiver on 127.0.0.1) and its settings."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from tests.support.webhooks import SECRET, receiving
from transmute.core.models import EVENTS_QUEUE, WEBHOOKS_QUEUE, TaskEvent, WebhookMessage
from transmute.services.worker.webhooks import WebhookSender, signed_headers, worth_retrying
from transmute.settings import DEFAULT_WEBHOOK_RETRY_DELAYS, ConfigError, WebhookConfig


@pytest.fixture
def brokers() -> Iterator[tuple[StubBroker, StubBroker]]:
    """The webhooks queue's broker and the events queue's, in process."""
    webhooks, events = StubBroker(), StubBroker()
    webhooks.declare_queue(WEBHOOKS_QUEUE)
    events.declare_queue(EVENTS_QUEUE)
    yield webhooks, events
    webhooks.close()
    events.close()


def deliver(brokers: tuple[StubBroker, StubBroker], url: str, *, allow_private: bool) -> TaskEvent:
    """Run the actor once on a `done` delivery to `url`; the task event it reported."""
    webhooks, events = brokers
    sender = WebhookSender(broker=webhooks, events_broker=events, allow_private=allow_private,
                           config=WebhookConfig(secret=SECRET, retry_delays=(30.0,)))
    message = WebhookMessage(task_id="7", event="done", url=url, body='{"task_id": "7"}', webhook_id="msg_7_1_done")
    sender(msgspec.to_builtins(message))
    (reported,) = [msgspec.convert(m.args[0], TaskEvent) for m in _drain(events, EVENTS_QUEUE)]
    return reported


def _drain(broker: StubBroker, queue: str) -> list[Message]:
    found = []
    while not broker.queues[queue].empty():
        found.append(Message.decode(broker.queues[queue].get_nowait()))
    return found


def waiting_retries(broker: StubBroker) -> list:
    return _drain(broker, f"{WEBHOOKS_QUEUE}.DQ")


def test_a_url_that_points_at_a_private_address_at_delivery_is_refused_and_not_tried_again(brokers):
    with receiving() as receiver:
        reported = deliver(brokers, receiver.url, allow_private=False)
        assert receiver.deliveries == []
    assert reported.kind == "webhook" and reported.webhook is not None
    assert reported.webhook.status_code is None and reported.webhook.attempts == 1
    assert waiting_retries(brokers[0]) == []


def test_a_500_is_tried_again_later_with_the_same_webhook_id_and_one_more_attempt(brokers):
    with receiving([500]) as receiver:
        reported = deliver(brokers, receiver.url, allow_private=True)
        assert len(receiver.deliveries) == 1
    assert reported.webhook is not None and reported.webhook.status_code == 500
    (retry,) = waiting_retries(brokers[0])
    again = msgspec.convert(retry.args[0], WebhookMessage)
    assert again.webhook_id == "msg_7_1_done" and again.attempt == 2
    assert retry.options["eta"] - retry.message_timestamp >= 29_000  # waits the first delay, 30 s


def test_signed_headers_follow_standard_webhooks():
    headers = signed_headers(SECRET, "msg_1", '{"a": 1}')
    assert set(headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,") and headers["webhook-timestamp"].isdigit()


def test_webhook_settings_are_read_and_checked(monkeypatch: pytest.MonkeyPatch):
    assert WebhookConfig().retry_delays == DEFAULT_WEBHOOK_RETRY_DELAYS
    assert sum(DEFAULT_WEBHOOK_RETRY_DELAYS) / 3600 > 20  # about a day of back-off
    monkeypatch.setenv("TRANSMUTE_WEBHOOK_RETRY_DELAYS", "1, 2.5,60")
    assert WebhookConfig.from_env().retry_delays == (1.0, 2.5, 60.0)
    for name, value in (("TRANSMUTE_WEBHOOK_RETRY_DELAYS", "5,soon"), ("TRANSMUTE_WEBHOOK_SECRET", "hunter2"),
                        ("TRANSMUTE_WEBHOOK_SECRET", "whsec_c2hvcnQ=")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=name):
            WebhookConfig.from_env()
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRANSMUTE_WEBHOOK_SECRET", SECRET)
    assert WebhookConfig.from_env().secret == SECRET


@pytest.mark.parametrize(("status_code", "retried"), [
    (None, True), (500, True), (502, True), (503, True), (408, True), (429, True),
    (200, False), (204, False), (301, False), (400, False), (401, False), (404, False), (410, False),
])
def test_no_answer_a_5xx_408_and_429_are_tried_again_and_nothing_else(status_code: int | None, retried: bool):
    assert worth_retrying(status_code) is retried
