"""`transmute worker`: a small supervisor over N worker processes (process.py). It replaces a process that dies,
beats for them all (the container's probe reads the heartbeat file, heartbeat.py) and serves their metrics;
on SIGTERM they drain (drain.py).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.process import BaseProcess

from transmute.logs import configure_logging
from transmute.services.worker.drain import STOP_TIMEOUT
from transmute.services.worker.heartbeat import heartbeat_age, slot_heartbeat, touch
from transmute.services.worker.instance import WorkerInstance, claim_instance
from transmute.services.worker.multiprocess_metrics import MultiprocessMetrics
from transmute.services.worker.process import worker_process
from transmute.services.worker.queue_depth import BrokerQueueDepth
from transmute.settings import BrokerConfig, OpsConfig, distributed_settings

log = logging.getLogger("transmute")

RESPAWN_DELAY = 1.0
"""Seconds before a worker process that died is replaced (the supervisor never gives up on a slot)."""
STARTUP_GRACE = 120.0
"""Seconds a replaced worker process may take to send its first heartbeat before the worker counts as stuck."""
COMPLAIN_AFTER = 10.0
"""Seconds after a start before a withheld heartbeat is logged (processes take a moment to beat first)."""


class Supervisor:
    """Keeps `processes` worker processes running, beats for them all, and stops them when `stopping` is set."""

    def __init__(self, *, processes: int, threads: int, log_level: str, ops: OpsConfig,
                 instance: WorkerInstance, broker: BrokerConfig | None = None) -> None:
        self.processes, self.threads, self.log_level = processes, threads, log_level
        self.instance = instance
        self.heartbeat = instance.heartbeat_file
        self.interval = ops.heartbeat_interval
        self.fresh_for = max(3 * ops.heartbeat_interval, 30.0)
        self.shutdown_timeout = ops.shutdown_timeout
        depth = [BrokerQueueDepth(broker)] if broker is not None and not broker.in_process else []
        # Before any process starts: it sets their folder.
        self.metrics = MultiprocessMetrics(instance.metrics_port, ops.metrics_address, instance.number, depth)
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()
        self.forcing = threading.Event()
        """Set by a second SIGTERM/SIGINT: the processes stop their conversions now instead of letting them end."""
        self.children: dict[int, BaseProcess] = {}
        self.started: dict[int, float] = {}
        self.replaced: set[int] = set()
        self.last_beat = 0.0
        self.last_complaint = ""

    def run(self) -> None:
        """Start the processes, keep them running until `stopping` is set, then let them drain."""
        self.heartbeat.unlink(missing_ok=True)  # a file left by an earlier run (the pod's /tmp outlives a container)
        try:
            self.metrics.serve()  # first: a port in use stops the start, before any process runs
            log.info("worker instance %d on this host: heartbeat file %s", self.instance.number, self.heartbeat)
            for slot in range(self.processes):
                self.children[slot] = self.spawn(slot)
            self.supervise()
            self.stop_children()
        finally:
            self.metrics.close()
            for slot in self.children:
                slot_heartbeat(self.heartbeat, slot).unlink(missing_ok=True)
            self.heartbeat.unlink(missing_ok=True)  # stopped: `transmute healthcheck worker` must not say alive
            self.instance.release()

    def spawn(self, slot: int) -> BaseProcess:
        slot_heartbeat(self.heartbeat, slot).unlink(missing_ok=True)
        process = self.context.Process(target=worker_process, args=(slot, self.threads, self.log_level, self.heartbeat),
                                       name=f"transmute-worker-{slot}")
        self.started[slot] = time.time()
        process.start()
        log.info("worker process %d started (pid %s)", slot, process.pid)
        return process

    def supervise(self) -> None:
        """Beat, and replace the processes that died, until `stopping` is set."""
        while not self.stopping.wait(0.2):
            self.beat()
            for slot, process in self.children.items():
                if process.is_alive() or self.stopping.is_set():
                    continue
                log.warning("worker process %d (pid %s) died with exit code %s; replacing it", slot, process.pid,
                            process.exitcode)
                process.join()
                self.metrics.process_died(process.pid)
                if self.stopping.wait(RESPAWN_DELAY):
                    break
                self.replaced.add(slot)
                self.children[slot] = self.spawn(slot)

    def stop_children(self) -> None:
        """SIGTERM every process, beat while they drain, and kill those still running past the deadline."""
        log.info("stopping: worker processes finish their conversions in flight (up to %g s; a second SIGTERM or "
                 "Ctrl-C stops them now and hands their tasks back)", self.shutdown_timeout)
        self.signal_children()
        deadline = time.monotonic() + self.shutdown_timeout + STOP_TIMEOUT + 5
        forced = False
        while any(process.is_alive() for process in self.children.values()) and time.monotonic() < deadline:
            if self.forcing.is_set() and not forced:
                forced = True
                log.warning("second stop signal: forcing the stop; conversions in flight are stopped and their "
                            "tasks handed back to the queue")
                self.signal_children()  # a worker process's second SIGTERM: stop now
                deadline = min(deadline, time.monotonic() + STOP_TIMEOUT + 5)
            self.beat()
            time.sleep(0.2)
        for process in self.children.values():
            if process.is_alive():
                log.warning("worker process pid %s did not stop in time; killing it", process.pid)
                process.kill()
            process.join()

    def signal_children(self) -> None:
        for process in self.children.values():
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    def on_signal(self, *_: object) -> None:
        """SIGTERM or SIGINT: the first drains, the second forces the stop."""
        (self.forcing if self.stopping.is_set() else self.stopping).set()

    def beat(self) -> None:
        """Touch the worker's heartbeat file (at most every interval) when every worker process has beaten lately
        or is a replacement still starting; otherwise say why not, once per change."""
        if time.monotonic() - self.last_beat < self.interval:
            return
        self.last_beat = time.monotonic()
        problems = [problem for slot, process in self.children.items()
                    if (problem := self.problem_of(slot, process)) is not None]
        if not problems:
            touch(self.heartbeat, f"{os.getpid()} {'draining' if self.stopping.is_set() else 'ok'}\n")
            self.last_complaint = ""
            return
        complaint = "; ".join(problems)
        if complaint != self.last_complaint and (self.stopping.is_set() or any(
                time.time() - self.started[slot] > COMPLAIN_AFTER for slot in self.children)):
            self.last_complaint = complaint
            log.warning("worker heartbeat withheld: %s", complaint)

    def problem_of(self, slot: int, process: BaseProcess) -> str | None:
        """What keeps the worker process in `slot` from counting as healthy; None when nothing does."""
        age = heartbeat_age(slot_heartbeat(self.heartbeat, slot))
        beaten = age is not None and time.time() - age >= self.started[slot] - 1
        if not process.is_alive():
            # While stopping, a process that drained and exited is fine.
            return None if self.stopping.is_set() else f"worker process {slot} is not running"
        fresh = beaten and age is not None and age <= self.fresh_for
        starting = slot in self.replaced and time.time() - self.started[slot] < STARTUP_GRACE
        if fresh or starting:
            return None
        if beaten:
            return f"worker process {slot} (pid {process.pid}) last beat {age:.0f} s ago"
        return f"worker process {slot} (pid {process.pid}) has not beaten yet"


def run_worker(*, processes: int, threads: int, log_level: str) -> None:
    """Supervise `processes` worker processes: replace any that dies, beat for them all, serve their metrics,
    and on SIGTERM/SIGINT let them drain."""
    configure_logging(log_level)
    settings = distributed_settings()
    ops = OpsConfig.from_env(settings.limits)
    supervisor = Supervisor(processes=processes, threads=threads, log_level=log_level, ops=ops,
                            instance=claim_instance(ops), broker=settings.broker)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, supervisor.on_signal)
    supervisor.run()
