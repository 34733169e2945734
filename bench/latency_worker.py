"""A Dramatiq worker process for the queue-latency figure: consumes `bench.latency` on RabbitMQ with the
broker transmute builds (publisher confirms, same heartbeat) and the settings of `transmute worker`
(worker_timeout 1000 ms, one message prefetched per thread), and appends `received - sent` to a file.

Usage: python -m bench.latency_worker AMQP_URL OUT_FILE
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import dramatiq

from transmute.services.broker import create_broker
from transmute.settings import BrokerConfig

QUEUE = "bench.latency"
ACTOR = "bench_latency"


def main() -> None:
    url, out = sys.argv[1], sys.argv[2]
    broker = create_broker(BrokerConfig(url=url))
    broker.declare_queue(QUEUE)
    lock = threading.Lock()

    @dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, max_retries=0, broker=broker)
    def bench_latency(sent: float, index: int) -> None:
        received = time.time()
        with lock, open(out, "a") as handle:
            handle.write(f"{index} {received - sent:.6f}\n")

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=1, worker_timeout=1000)
    worker.queue_prefetch = 1
    worker.start()
    with open(out + ".ready", "w") as handle:
        handle.write("ready\n")
    stop.wait()
    worker.stop(timeout=5000)
    broker.close()


if __name__ == "__main__":
    main()
