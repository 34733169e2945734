"""Draining a worker process: stop taking messages, hand back what waits, let the conversions in flight finish
up to a timeout, then cancel the rest (their tasks go back to the queue)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from dramatiq.common import iter_queue

if TYPE_CHECKING:  # the supervisor imports STOP_TIMEOUT: it must not load the worker's metrics
    from transmute.services.worker.middleware import HandBackWhileDraining

log = logging.getLogger("transmute")

STOP_TIMEOUT = 30.0
"""Seconds a worker process has, once its conversions are cancelled, to hand their tasks back and exit."""


def hand_back_waiting(worker: Any, guard: HandBackWhileDraining, broker: Any) -> None:
    """Messages delivered to a draining process wait in its work queue: send them again, acknowledge them."""
    for item in iter_queue(worker.work_queue):
        try:
            guard.hand_back(broker, item.message)
            worker.consumers[item.message.queue_name].post_process_message(item.message)
        except Exception:
            log.warning("could not hand a waiting message back; the broker redelivers it when this process "
                        "exits", exc_info=True)
        finally:
            worker.work_queue.task_done()


def drain(worker: Any, guard: HandBackWhileDraining, converter: Any, broker: Any, timeout: float, *,
          force: threading.Event | None = None) -> None:
    """Stop taking messages, let the conversions in flight finish for up to `timeout` s (or until `force` is set:
    a second signal), then cancel the rest (their tasks go back to the queue) and stop the Dramatiq worker.

    The consumer stays connected meanwhile: it keeps the AMQP heartbeats going and acknowledges what
    finishes. Worker threads end after their current message; a message delivered meanwhile is sent back
    to the queue at once (by `guard`, or from the work queue here), so it does not wait behind a long
    conversion."""
    busy = converter.cancels.in_flight()  # (idle worker threads are alive too)
    log.info("worker process stopping: no new conversions; waiting up to %g s for the ones in flight", timeout)
    guard.draining.set()
    for thread in worker.workers:
        thread.stop()
    force = force or threading.Event()
    _wait_for_threads(worker, guard, broker, timeout, force)
    left = sum(1 for thread in worker.workers if thread.is_alive())
    if left and force.is_set():
        log.warning("second stop signal: forcing the stop; %d conversion(s) stopped now, their tasks go back to "
                    "the queue", left)
        converter.shutdown.set()
    elif left:
        log.warning("%d conversion(s) still running after %g s: stopping them; their tasks go back to the queue",
                    left, timeout)
        converter.shutdown.set()
    elif busy:
        log.info("conversions in flight finished; worker process exiting")
    else:
        log.info("no conversion in flight; worker process exiting")
    worker.stop(timeout=int(STOP_TIMEOUT * 1000))


def _wait_for_threads(worker: Any, guard: HandBackWhileDraining, broker: Any, timeout: float,
                      force: threading.Event) -> None:
    """Until the worker threads end, `timeout` passes or `force` is set, hand back what is delivered meanwhile."""
    deadline = time.monotonic() + timeout
    while (any(thread.is_alive() for thread in worker.workers) and time.monotonic() < deadline
           and not force.is_set()):
        hand_back_waiting(worker, guard, broker)
        time.sleep(0.2)
    hand_back_waiting(worker, guard, broker)
