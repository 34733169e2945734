"""`transmute worker`: a small supervisor over N worker processes. Each builds its broker and storage from the
environment and consumes the convert queue with M threads; a worker needs the broker and the object storage
only, never the database. The supervisor replaces a process that dies, beats for them all (the container's
probe reads the heartbeat file) and serves their metrics; on SIGTERM they drain.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transmute.logs import configure_logging
from transmute.settings import OpsConfig, distributed_settings

if TYPE_CHECKING:
    pass

log = logging.getLogger("transmute")

RESPAWN_DELAY = 1.0
"""Seconds before a worker process that died is replaced (the supervisor never gives up on a slot)."""
STOP_TIMEOUT = 30.0
"""Seconds a worker process has, once its conversions are cancelled, to hand their tasks back and exit."""
STARTUP_GRACE = 120.0
"""Seconds a replaced worker process may take to send its first heartbeat before the worker counts as stuck."""



def heartbeat_age(path: Path) -> float | None:
    """Seconds since the heartbeat file was last touched; None when there is none."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return None


def check_heartbeat(path: Path, max_age: float) -> str | None:
    """What is wrong with a worker whose heartbeat file is `path`, in one sentence; None when it is fresh."""
    age = heartbeat_age(path)
    if age is None:
        return f"no worker heartbeat: {path} does not exist (the worker has not started, or it never got healthy)."
    if age > max_age:
        return f"the worker heartbeat is stale: {path} was last touched {age:.0f} s ago (more than {max_age:g} s)."
    return None


def touch(path: Path, note: str = "") -> None:
    """Write the heartbeat file whole (a reader never sees half a file)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(note)
        os.replace(partial, path)
    except OSError as exc:
        log.warning("could not write the heartbeat file %s: %s", path, exc)


def slot_heartbeat(path: Path, slot: int) -> Path:
    return path.with_name(f"{path.name}.{slot}")


def worker_problems(worker: Any, *, draining: bool) -> list[str]:
    """Why a worker process is not healthy: dead Dramatiq worker threads or broker consumer threads.

    While draining, worker threads end on purpose and consumers are no longer needed: nothing to report.
    """
    if draining:
        return []
    problems = []
    dead = sum(1 for thread in worker.workers if not thread.is_alive())
    if dead:
        problems.append(f"{dead} of {len(worker.workers)} worker thread(s) died")
    problems.extend(f"the consumer of {queue} stopped" for queue, thread in worker.consumers.items()
                    if not thread.is_alive())
    return problems


def _heartbeat_loop(worker: Any, ops: Any, path: Path, interval: float, done: threading.Event) -> None:
    """A worker process's heartbeat: touch its own file every `interval` s while its threads are alive."""
    while True:
        problems = worker_problems(worker, draining=ops.draining.is_set())
        if problems:
            log.error("worker process unhealthy, heartbeat withheld: %s", "; ".join(problems))
        else:
            touch(path, f"{os.getpid()} {'draining' if ops.draining.is_set() else 'ok'}\n")
        if done.wait(interval):
            return


def _hand_back_waiting(worker: Any, ops: Any, broker: Any) -> None:
    """Messages delivered to a draining process wait in its work queue: send them again, acknowledge them."""
    from dramatiq.common import iter_queue

    for item in iter_queue(worker.work_queue):
        try:
            ops.hand_back(broker, item.message)
            worker.consumers[item.message.queue_name].post_process_message(item.message)
        except Exception:
            log.warning("could not hand a waiting message back; the broker redelivers it when this process "
                        "exits", exc_info=True)
        finally:
            worker.work_queue.task_done()


def worker_scratch_dir() -> Path:
    """Where a worker's conversions keep their files: a folder of their own under the system temp folder, so
    the cleanup at start touches nothing else there."""
    folder = Path(tempfile.gettempdir()) / "transmute-scratch"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def worker_process(slot: int, threads: int, log_level: str) -> None:
    """One worker process: consume the convert queue with `threads` threads until SIGTERM or SIGINT, then drain."""
    import dramatiq

    from transmute.core.models import CONVERT_QUEUE
    from transmute.services.broker import create_broker
    from transmute.services.worker.convert import Converter, register_convert_actor
    from transmute.services.worker.middleware import install_worker_middleware
    from transmute.storage import create_storage
    from transmute.storage.scratch import clean_start

    configure_logging(log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    settings = distributed_settings()
    ops_config = OpsConfig.from_env(settings.limits)
    broker = create_broker(settings.broker)
    ops = install_worker_middleware(broker)
    storage = create_storage(settings.storage)
    scratch = worker_scratch_dir()
    clean_start(scratch, storage)  # what a killed worker process on this host left behind
    converter = Converter(broker=broker, storage=storage, limits=settings.limits, requeue_interrupted=True,
                          scratch_dir=scratch)
    register_convert_actor(converter)
    worker = dramatiq.Worker(broker, queues={CONVERT_QUEUE}, worker_threads=threads, worker_timeout=1000)
    # One message per thread, none waiting: a prefetched message would sit unacknowledged behind a long
    # conversion (counting towards RabbitMQ's consumer timeout) while another worker is idle.
    worker.queue_prefetch = threads
    worker.start()
    beating = threading.Event()
    threading.Thread(target=_heartbeat_loop, name="transmute-heartbeat", daemon=True,
                     args=(worker, ops, slot_heartbeat(ops_config.heartbeat_file, slot),
                           ops_config.heartbeat_interval, beating)).start()
    log.info("worker process ready: %d thread(s) on %s", threads, CONVERT_QUEUE)
    stop.wait()
    drain(worker, ops, converter, broker, ops_config.shutdown_timeout)
    beating.set()
    broker.close()


def drain(worker: Any, ops: Any, converter: Any, broker: Any, timeout: float) -> None:
    """Stop taking messages, let the conversions in flight finish for up to `timeout` s, then cancel the rest
    (their tasks go back to the queue) and stop the Dramatiq worker.

    The consumer stays connected meanwhile: it keeps the AMQP heartbeats going and acknowledges what
    finishes. Worker threads end after their current message; a message delivered meanwhile is sent back
    to the queue at once (by HandBackWhileDraining, or from the work queue here), so it does not wait behind a long
    conversion."""
    busy = sum(1 for thread in worker.workers if thread.is_alive())
    log.info("worker process stopping: no new conversions; waiting up to %g s for the ones in flight", timeout)
    ops.draining.set()
    for thread in worker.workers:
        thread.stop()
    deadline = time.monotonic() + timeout
    while any(thread.is_alive() for thread in worker.workers) and time.monotonic() < deadline:
        _hand_back_waiting(worker, ops, broker)
        time.sleep(0.2)
    _hand_back_waiting(worker, ops, broker)
    left = sum(1 for thread in worker.workers if thread.is_alive())
    if left:
        log.warning("%d conversion(s) still running after %g s: stopping them; their tasks go back to the queue",
                    left, timeout)
        converter.shutdown.set()
    elif busy:
        log.info("conversions in flight finished; worker process exiting")
    worker.stop(timeout=int(STOP_TIMEOUT * 1000))


class _WorkerMetrics:
    """The supervisor's side of the worker metrics: prometheus_client's multiprocess mode.

    PROMETHEUS_MULTIPROC_DIR must be set before a worker process imports prometheus_client, so the
    supervisor sets it (a fresh temporary folder unless it is set already, then emptied) before it
    starts them; it serves the sum over all processes, live and dead, on one port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: Any = None
        self.created: str | None = None
        if port <= 0:
            return
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            for stale in Path(folder).glob("*.db"):
                stale.unlink(missing_ok=True)
        else:
            folder = self.created = tempfile.mkdtemp(prefix="transmute-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder

    def serve(self) -> None:
        if self.port <= 0:
            return
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        try:
            self.server, _ = start_http_server(self.port, registry=registry)
        except OSError as exc:
            log.error("worker metrics not served: port %d: %s", self.port, exc.strerror or exc)
            return
        log.info("worker metrics on :%d/metrics", self.port)

    def process_died(self, pid: int | None) -> None:
        if self.port > 0 and pid is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.created:
            shutil.rmtree(self.created, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def run_worker(*, processes: int, threads: int, log_level: str) -> None:
    """Supervise `processes` worker processes: replace any that dies, beat for them all, serve their metrics,
    and on SIGTERM/SIGINT let them drain (see `drain`)."""
    configure_logging(log_level)
    settings = distributed_settings()
    ops = OpsConfig.from_env(settings.limits)
    metrics = _WorkerMetrics(ops.metrics_port)
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    heartbeat = ops.heartbeat_file
    heartbeat.unlink(missing_ok=True)  # a file left by an earlier run (the pod's /tmp outlives a container)
    started: dict[int, float] = {}
    replaced: set[int] = set()

    def spawn(slot: int) -> multiprocessing.process.BaseProcess:
        slot_heartbeat(heartbeat, slot).unlink(missing_ok=True)
        process = context.Process(target=worker_process, args=(slot, threads, log_level),
                                  name=f"transmute-worker-{slot}")
        started[slot] = time.time()
        process.start()
        log.info("worker process %d started (pid %s)", slot, process.pid)
        return process

    fresh_for = max(3 * ops.heartbeat_interval, 30.0)
    last_beat = 0.0
    last_complaint = ""

    def beat() -> None:
        """Touch the worker's heartbeat file when every worker process has beaten lately (or is a
        replacement still starting)."""
        nonlocal last_beat, last_complaint
        if time.monotonic() - last_beat < ops.heartbeat_interval:
            return
        last_beat = time.monotonic()
        problems = []
        for slot, process in children.items():
            age = heartbeat_age(slot_heartbeat(heartbeat, slot))
            beaten = age is not None and time.time() - age >= started[slot] - 1
            fresh = beaten and age is not None and age <= fresh_for
            starting = slot in replaced and time.time() - started[slot] < STARTUP_GRACE
            if not process.is_alive():
                if not stopping.is_set():  # while stopping, a process that drained and exited is fine
                    problems.append(f"worker process {slot} is not running")
                continue
            if fresh or starting:
                continue
            if beaten:
                problems.append(f"worker process {slot} (pid {process.pid}) last beat {age:.0f} s ago")
            else:
                problems.append(f"worker process {slot} (pid {process.pid}) has not beaten yet")
        if not problems:
            touch(heartbeat, f"{os.getpid()} {'draining' if stopping.is_set() else 'ok'}\n")
            last_complaint = ""
        elif "; ".join(problems) != last_complaint and (stopping.is_set() or any(
                time.time() - started[slot] > 10 for slot in children)):
            last_complaint = "; ".join(problems)
            log.warning("worker heartbeat withheld: %s", last_complaint)

    children = {slot: spawn(slot) for slot in range(processes)}
    metrics.serve()
    try:
        while not stopping.wait(0.2):
            beat()
            for slot, process in children.items():
                if process.is_alive() or stopping.is_set():
                    continue
                log.warning("worker process %d (pid %s) died with exit code %s; replacing it", slot, process.pid,
                            process.exitcode)
                process.join()
                metrics.process_died(process.pid)
                if stopping.wait(RESPAWN_DELAY):
                    break
                replaced.add(slot)
                children[slot] = spawn(slot)
        log.info("stopping: worker processes finish their conversions in flight (up to %g s)",
                 ops.shutdown_timeout)
        for process in children.values():
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + ops.shutdown_timeout + STOP_TIMEOUT + 5
        while any(process.is_alive() for process in children.values()) and time.monotonic() < deadline:
            beat()
            time.sleep(0.2)
        for process in children.values():
            if process.is_alive():
                log.warning("worker process pid %s did not stop in time; killing it", process.pid)
                process.kill()
            process.join()
    finally:
        metrics.close()
        for slot in children:
            slot_heartbeat(heartbeat, slot).unlink(missing_ok=True)
