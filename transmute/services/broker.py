"""The Dramatiq broker, shared by gateway and worker: RabbitMQ (publisher confirms) or in-process."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from transmute.core.config import BrokerConfig
from transmute.core.models import CONVERT_QUEUE, EVENTS_QUEUE


def create_broker(config: BrokerConfig) -> dramatiq.Broker:
    """A broker with both transmute queues declared, set as Dramatiq's global broker."""
    if config.in_process:
        broker: dramatiq.Broker = StubBroker()
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Confirms make enqueue() return only once RabbitMQ has the message, so a 200 from the
        # gateway means the convert message is safe.
        broker = RabbitmqBroker(url=config.url, confirm_delivery=True, heartbeat=60)
    broker.add_middleware(CurrentMessage())
    for queue in (CONVERT_QUEUE, EVENTS_QUEUE):
        broker.declare_queue(queue)
    dramatiq.set_broker(broker)
    return broker


def send(broker: dramatiq.Broker, queue_name: str, actor_name: str, payload: dict) -> None:
    """Send a message to an actor by name: the sender needs neither the actor's code nor its module."""
    broker.enqueue(dramatiq.Message(queue_name=queue_name, actor_name=actor_name, args=(payload,),
                                    kwargs={}, options={}))
