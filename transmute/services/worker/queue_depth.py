"""The worker's `transmute_queue_depth`: the convert messages waiting in RabbitMQ's queue, read when scraped."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from transmute.core.models import CONVERT_QUEUE
from transmute.services.broker import amqp_url
from transmute.settings import BrokerConfig

log = logging.getLogger("transmute.worker")

CACHE_SECONDS = 1.0
"""Scrapes within this share one look at the queue."""


class BrokerQueueDepth(Collector):
    """Convert messages ready in the broker's queue (not those a worker has taken already), looked up with a
    passive queue declare at most once a second; nothing is reported while the broker cannot be reached."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self._value: int | None = None
        self._read_at = float("-inf")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if time.monotonic() - self._read_at >= CACHE_SECONDS:
            self._value = self._read()
            self._read_at = time.monotonic()
        if self._value is not None:
            yield GaugeMetricFamily("transmute_queue_depth", "Tasks waiting to be converted (convert messages ready "
                                    "in the broker's queue)", value=self._value)

    def _read(self) -> int | None:
        import pika

        try:
            connection = pika.BlockingConnection(pika.URLParameters(amqp_url(self.config)))
            try:
                declared = connection.channel().queue_declare(CONVERT_QUEUE, passive=True)
                return declared.method.message_count
            finally:
                connection.close()
        except Exception as exc:  # the queue not declared yet, or the broker away: no sample this time
            log.debug("queue depth not read: %s", exc)
            return None
