"""A worker's cancels and the runs they stop, with a stalled run's retry, which also answers to the stalled
attempt's cancel (the gateway may still have known the task by that attempt)."""

from __future__ import annotations

import threading

from transmute.services.worker.cancels import Cancels


def test_a_cancel_naming_the_stalled_attempt_stops_its_retry_but_not_a_later_retry_by_the_user():
    cancels, shutdown = Cancels(), threading.Event()
    with cancels.running("7", 2, shutdown, also=(1,)) as stop:
        assert not stop.is_set()
        assert cancels.cancel("7", 1) is True
        assert stop.is_set()
    with cancels.running("7", 2, shutdown, also=(1,)) as stop:  # delivered again after the cancel: stopped at once
        assert stop.is_set()
    with cancels.running("7", 2, shutdown) as stop:  # the user's retry of the cancelled task: attempt 2, no stall
        assert not stop.is_set()


def test_a_cancel_of_another_attempt_stops_nothing():
    cancels, shutdown = Cancels(), threading.Event()
    with cancels.running("7", 3, shutdown, also=(2,)) as stop:
        assert cancels.cancel("7", 1) is False
        assert not stop.is_set()
    assert cancels.cancel("7", 3) is False  # the run ended: nothing of it is left to stop
