"""Control messages (a cancel) from the gateway to every worker process, over RabbitMQ's fanout exchange.

A Dramatiq queue hands each message to one consumer, but a cancel must reach whichever worker runs the task:
so the gateway publishes to the fanout exchange CONTROL_EXCHANGE, and each worker process consumes a queue of
its own (server-named, exclusive: gone with its connection) bound to it. pika is what Dramatiq's RabbitMQ broker
is built on; it is used directly here since Dramatiq has no broadcast.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import msgspec

from transmute.core.models import CONTROL_EXCHANGE, ControlMessage
from transmute.services.broker import amqp_url
from transmute.settings import BrokerConfig

log = logging.getLogger("transmute.control")


def publish_control(config: BrokerConfig, message: ControlMessage) -> None:
    """Publish one control message to every worker (blocking: call it from a thread)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url(config)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare(CONTROL_EXCHANGE, exchange_type="fanout", durable=True)
        channel.basic_publish(CONTROL_EXCHANGE, routing_key="", body=msgspec.json.encode(message))
    finally:
        connection.close()


class ControlListener(threading.Thread):
    """A worker process's consumer of control messages: a thread with its own connection, reconnecting with
    back-off while RabbitMQ is away (cancels sent meanwhile are missed: the task is cancelled in the store
    anyway, and its events are ignored)."""

    def __init__(self, config: BrokerConfig, handle: Callable[[ControlMessage], None]) -> None:
        super().__init__(name="transmute-control", daemon=True)
        self.config = config
        self.handle = handle
        self.ready = threading.Event()
        """Set once the queue is bound (a cancel published from then on is heard)."""
        self._stopping = threading.Event()
        self._connection = None

    def run(self) -> None:
        pause = 0.5
        while not self._stopping.is_set():
            try:
                self._consume()
                pause = 0.5
            except Exception as exc:
                if self._stopping.is_set():
                    break
                pause = min(15.0, pause * 2)
                log.warning("control messages: connection lost (%s); reconnecting in %g s", exc, pause)
                self._stopping.wait(pause)

    def _consume(self) -> None:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(amqp_url(self.config)))
        self._connection = connection
        try:
            channel = connection.channel()
            channel.exchange_declare(CONTROL_EXCHANGE, exchange_type="fanout", durable=True)
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            channel.queue_bind(queue, CONTROL_EXCHANGE)
            channel.basic_consume(queue, self._on_message, auto_ack=True)
            self.ready.set()
            channel.start_consuming()
        finally:
            self._connection = None
            if connection.is_open:
                connection.close()

    def _on_message(self, _channel, _method, _properties, body: bytes) -> None:
        try:
            message = msgspec.json.decode(body, type=ControlMessage)
        except msgspec.DecodeError:
            log.warning("control messages: ignored one that is not a control message: %r", body[:200])
            return
        self.handle(message)

    def stop(self) -> None:
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):  # already closed
                connection.add_callback_threadsafe(lambda: connection.close())
        self.join(5)
