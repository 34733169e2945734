"""While the broker is away, Dramatiq's consumers log each reconnection attempt: the log keeps the first and then
one line a minute per consumer, without tracebacks, saying how many it left out."""

from __future__ import annotations

import logging
import sys

from transmute.logs import BrokerOutageFilter

CONSUMER = "dramatiq.worker.ConsumerThread(transmute.events)"


def failure(name: str = CONSUMER) -> logging.LogRecord:
    try:
        raise ConnectionError("vhost outage not found")
    except ConnectionError:
        exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.CRITICAL, __file__, 1, "Consumer encountered a connection error: %s",
                             ("vhost outage not found",), exc_info)


def test_a_consumer_failing_again_and_again_is_logged_once_then_once_a_minute_without_its_traceback():
    now = [1000.0]
    quiet = BrokerOutageFilter(quiet_seconds=60, clock=lambda: now[0])
    assert quiet.filter(failure())  # the first one, whole
    for _ in range(19):  # every 3 s for a minute
        now[0] += 3
        assert not quiet.filter(failure())
    now[0] += 3
    later = failure()
    assert quiet.filter(later)
    assert later.exc_info is None and later.args is None
    assert later.getMessage() == ("Consumer encountered a connection error: vhost outage not found "
                                  "(again; 19 like it in the last 60 s not shown)")
    # The broker came back; an hour later another outage begins: its first failure is whole again.
    now[0] += 3600
    next_outage = failure()
    assert quiet.filter(next_outage) and next_outage.exc_info is not None


def test_each_consumer_and_every_other_record_are_logged_as_before():
    quiet = BrokerOutageFilter(quiet_seconds=60)
    assert quiet.filter(failure())
    assert quiet.filter(failure("dramatiq.worker.ConsumerThread(transmute.events.DQ)"))  # another queue's consumer
    other = logging.LogRecord("transmute.api", logging.ERROR, __file__, 1, "task %s failed", ("7",), None)
    assert all(quiet.filter(other) for _ in range(3))
