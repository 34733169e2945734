"""One worker process: build its broker, storage and converter, consume the convert queue until SIGTERM or
SIGINT, then drain. It needs the broker and the object storage only, never the database."""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transmute.core.models import CONVERT_QUEUE
from transmute.core.plugins import use_plugins
from transmute.logs import configure_logging
from transmute.services.worker.drain import drain
from transmute.services.worker.heartbeat import ProcessHeartbeat, slot_heartbeat
from transmute.settings import OpsConfig, PluginConfig, Settings, distributed_settings

if TYPE_CHECKING:
    from transmute.services.control import ControlListener
    from transmute.services.worker.convert import Converter
    from transmute.services.worker.middleware import HandBackWhileDraining

log = logging.getLogger("transmute")


def worker_scratch_dir() -> Path:
    """Where a worker's conversions keep their files: a folder of their own under the system temp folder, so
    the cleanup at start touches nothing else there."""
    folder = Path(tempfile.gettempdir()) / "transmute-scratch"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class Stop:
    """What the supervisor's signals ask of a worker process: the first SIGTERM `drain`, a second `force` (stop
    the conversions in flight now). SIGINT is ignored: Ctrl-C reaches the whole process group, and the
    supervisor passes each one on as a SIGTERM, so two Ctrl-C are two requests, not four."""

    def __init__(self) -> None:
        self.drain, self.force = threading.Event(), threading.Event()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, *_: object) -> None:
        (self.force if self.drain.is_set() else self.drain).set()


def start_consuming(broker: Any, threads: int) -> Any:
    """Start a Dramatiq worker on the convert queue with `threads` threads."""
    import dramatiq

    worker = dramatiq.Worker(broker, queues={CONVERT_QUEUE}, worker_threads=threads, worker_timeout=1000)
    # One message per thread, none waiting: a prefetched message would sit unacknowledged behind a long
    # conversion (counting towards RabbitMQ's consumer timeout) while another worker is idle.
    worker.queue_prefetch = threads
    worker.start()
    return worker


def build_converter(settings: Settings) -> tuple[Converter, HandBackWhileDraining]:
    """The process's broker (with the worker's middleware), storage and convert actor; and the drain's guard."""
    # Imported here, in the worker process: the supervisor imports this module, and must not load
    # prometheus_client (the worker's metrics) before it has set PROMETHEUS_MULTIPROC_DIR.
    from transmute.services.broker import create_broker
    from transmute.services.worker.convert import Converter, register_convert_actor
    from transmute.services.worker.middleware import install_worker_middleware
    from transmute.storage import create_storage
    from transmute.storage.scratch import clean_start

    broker = create_broker(settings.broker)
    guard = install_worker_middleware(broker)
    storage = create_storage(settings.storage)
    scratch = worker_scratch_dir()
    clean_start(scratch, storage)  # what a killed worker process on this host left behind
    converter = Converter(broker=broker, storage=storage, limits=settings.limits, requeue_interrupted=True,
                          scratch_dir=scratch)
    register_convert_actor(converter)
    return converter, guard


def listen_for_control(settings: Settings, converter: Converter) -> ControlListener:
    """Start hearing the gateway's control messages (cancels) on a queue of this process's own."""
    from transmute.services.control import ControlListener

    listener = ControlListener(settings.broker, converter.control)
    listener.start()
    if not listener.ready.wait(30):
        log.warning("control messages: not connected yet; cancels are heard once it is")
    return listener


def start_webhooks(settings: Settings) -> Any:
    """Webhook deliveries on a broker connection and threads of their own (a slow receiver delays no conversion);
    the Dramatiq worker consuming them."""
    from transmute.services.broker import create_broker
    from transmute.services.worker.webhooks import WebhookSender, register_webhook_actor, start_webhook_worker

    broker = create_broker(settings.broker)
    register_webhook_actor(WebhookSender(broker=broker, config=settings.webhooks,
                                         allow_private=settings.fetch.allow_private_urls))
    return start_webhook_worker(broker, settings.webhooks.threads)


def worker_process(slot: int, threads: int, log_level: str, heartbeat_file: Path) -> None:
    """One worker process: consume the convert queue with `threads` threads until SIGTERM or SIGINT, then drain."""
    configure_logging(log_level)
    stop = Stop()
    settings = distributed_settings()
    use_plugins(PluginConfig.from_env().plugins)
    ops = OpsConfig.from_env(settings.limits)
    deliveries = start_webhooks(settings)
    converter, guard = build_converter(settings)
    control = listen_for_control(settings, converter)
    worker = start_consuming(converter.broker, threads)
    heartbeat = ProcessHeartbeat(worker, guard.draining, slot_heartbeat(heartbeat_file, slot),
                                 ops.heartbeat_interval)
    heartbeat.start()
    log.info("worker process ready: %d thread(s) on %s", threads, CONVERT_QUEUE)
    stop.drain.wait()
    drain(worker, guard, converter, converter.broker, ops.shutdown_timeout, force=stop.force)
    deliveries.stop()  # a delivery in flight is not acknowledged: RabbitMQ hands it to another worker
    heartbeat.stop()
    control.stop()
    close_quietly(converter.broker)
    close_quietly(deliveries.broker)


def close_quietly(broker: Any) -> None:
    """Close the broker's connections at a clean stop. Those of threads that have been idle a while RabbitMQ has
    already dropped (missed heartbeats): pika would log each as an ERROR with a traceback, for nothing lost."""
    logging.getLogger("pika").setLevel(logging.CRITICAL + 1)
    broker.close()
