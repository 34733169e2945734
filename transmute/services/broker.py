"""The Dramatiq broker, shared by gateway and worker: RabbitMQ (publisher confirms) or in-process."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from transmute.backoff import after_pauses, call_with_backoff
from transmute.core.models import CONVERT_QUEUE, EVENTS_QUEUE, WEBHOOKS_QUEUE
from transmute.settings import BrokerConfig

log = logging.getLogger("transmute.broker")

BROKER_UNREACHABLE: type[Exception] = (getattr(dramatiq.errors, "BrokerConnectionError", None)
                                       or dramatiq.errors.ConnectionError)
"""What a send raises while the broker is away (Dramatiq 2 renamed ConnectionError; the old name warns on use)."""

SEND_BACKOFF = (0.25, 0.5, 1.0, 2.0)
"""Pauses between attempts to send one message while the broker is unreachable (about 4 s in all)."""


def create_broker(config: BrokerConfig) -> dramatiq.Broker:
    """A broker with both transmute queues declared, set as Dramatiq's global broker."""
    if config.in_process:
        broker: dramatiq.Broker = StubBroker()
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Confirms make enqueue() return only once RabbitMQ has the (persistent) message in its (durable)
        # queue, so a 200 from the gateway means the convert message is safe. Heartbeats let both ends
        # notice a dead peer; Dramatiq's consumer thread keeps answering them while an actor runs.
        broker = RabbitmqBroker(url=amqp_url(config), confirm_delivery=True)
    broker.add_middleware(CurrentMessage())
    for queue in (CONVERT_QUEUE, EVENTS_QUEUE, WEBHOOKS_QUEUE):
        broker.declare_queue(queue)
    if not config.in_process:
        declare_now(broker)
    dramatiq.set_broker(broker)
    return broker


def declare_now(broker: dramatiq.Broker) -> None:
    """Create the queues on RabbitMQ at start (Dramatiq waits for the first publish or consume): a gateway
    started before any worker is ready at once, and its convert messages wait in the queue."""
    for queue in (CONVERT_QUEUE, EVENTS_QUEUE):
        broker.declare_queue(queue, ensure=True)  # type: ignore[call-arg]
    # The connection was this thread's only: close it rather than leave it to miss its heartbeats.
    del broker.connection  # type: ignore[attr-defined]


def amqp_url(config: BrokerConfig) -> str:
    """The broker URL with transmute's connection settings added (those the URL sets itself win)."""
    parts = urlsplit(config.url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("heartbeat", str(config.heartbeat))
    # A RabbitMQ that blocks publishers (disk or memory alarm) makes a publish fail after this, not hang.
    query.setdefault("blocked_connection_timeout", "30")
    return urlunsplit(parts._replace(query=urlencode(query)))


def send(
    broker: dramatiq.Broker,
    queue_name: str,
    actor_name: str,
    payload: dict,
    *,
    backoff: tuple[float, ...] = SEND_BACKOFF,
) -> None:
    """Send a message to an actor by name: the sender needs neither the actor's code nor its module.

    A broker that is briefly away (a RabbitMQ restart, a dropped connection) is tried again after each
    pause in `backoff`; the last failure is raised.
    """
    message = dramatiq.Message(queue_name=queue_name, actor_name=actor_name, args=(payload,), kwargs={},
                               options={})

    def retrying(exc: BaseException, pause: float) -> None:
        log.warning("could not send to %s (%s); trying again in %.2g s", queue_name, exc, pause)

    call_with_backoff(lambda: broker.enqueue(message), errors=BROKER_UNREACHABLE,
                      backoff=after_pauses(backoff), on_retry=retrying)


def send_later(broker: dramatiq.Broker, queue_name: str, actor_name: str, payload: dict, *, delay: float) -> None:
    """Send a message to an actor by name after `delay` seconds.

    On RabbitMQ the message waits in a queue of its own per delay, `<queue>.wait.<ms>`, whose TTL dead-letters it
    into the real queue when the delay is over: nobody holds it meanwhile. (Dramatiq's own delays are held,
    unacknowledged, by a worker until due, and RabbitMQ closes a consumer whose delivery stays unacknowledged
    past consumer_timeout, 30 minutes by default: hours of back-off would never arrive.) The in-process broker
    keeps it in memory until due, as Dramatiq does.
    """
    message = dramatiq.Message(queue_name=queue_name, actor_name=actor_name, args=(payload,), kwargs={},
                               options={})
    delay_ms = max(1, int(delay * 1000))
    if isinstance(broker, StubBroker):
        broker.enqueue(message, delay=delay_ms)
        return

    import pika

    waiting = f"{queue_name}.wait.{delay_ms}"

    def publish() -> None:
        try:
            channel = broker.channel  # type: ignore[attr-defined]
            channel.queue_declare(queue=waiting, durable=True, arguments={
                "x-message-ttl": delay_ms, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue_name})
            channel.basic_publish(exchange="", routing_key=waiting, body=message.encode(),
                                  properties=pika.BasicProperties(delivery_mode=2), mandatory=True)
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
            del broker.connection  # type: ignore[attr-defined]  # the next try opens a new one
            raise BROKER_UNREACHABLE(str(exc)) from None

    def retrying(exc: BaseException, pause: float) -> None:
        log.warning("could not send to %s (%s); trying again in %.2g s", waiting, exc, pause)

    call_with_backoff(publish, errors=BROKER_UNREACHABLE, backoff=after_pauses(SEND_BACKOFF), on_retry=retrying)
