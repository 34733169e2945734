"""Trying a call again with back-off: the pauses, giving up, and cancelling (transmute.backoff)."""

import threading

import pytest

from transmute import backoff as backoff_module
from transmute.backoff import after_pauses, call_with_backoff, doubling


class Flaky:
    """A call that fails `failures` times with `error`, then returns "ok"."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return "ok"


class FakeClock:
    """time.monotonic and time.sleep for the back-off: sleeping moves the clock, at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(backoff_module, "time", fake)
    return fake


def run(action, backoff, cancel=None, errors=ConnectionError):
    pauses: list[float] = []
    try:
        return call_with_backoff(action, errors=errors, backoff=backoff, cancel=cancel,
                                 on_retry=lambda exc, pause: pauses.append(pause)), pauses
    except Exception as exc:
        return exc, pauses


def test_a_call_that_succeeds_is_made_once(clock):
    action = Flaky(0)
    assert run(action, after_pauses((0.25, 0.5))) == ("ok", [])
    assert action.calls == 1


def test_each_pause_is_waited_in_turn_until_the_call_succeeds(clock):
    action = Flaky(2)
    assert run(action, after_pauses((0.25, 0.5, 1.0))) == ("ok", [0.25, 0.5])
    assert action.calls == 3


def test_once_the_pauses_are_used_the_last_error_is_raised(clock):
    action = Flaky(10)
    error, pauses = run(action, after_pauses((0.25, 0.5)))
    assert (str(error), pauses, action.calls) == ("failure 3", [0.25, 0.5], 3)


def test_no_pauses_means_one_try(clock):
    action = Flaky(10)
    error, pauses = run(action, after_pauses(()))
    assert (str(error), pauses, action.calls) == ("failure 1", [], 1)


def test_other_errors_are_raised_at_once(clock):
    action = Flaky(10, error=ValueError)
    error, pauses = run(action, after_pauses((0.25,)))
    assert (type(error), pauses, action.calls) == (ValueError, [], 1)


def test_doubling_pauses_stop_before_the_deadline(clock):
    action = Flaky(100)
    error, pauses = run(action, doubling(1.0, 15.0, within=60))
    # 1 + 2 + 4 + 8 + 15 + 15 + 15 = 60 s: a pause ending at the deadline is taken, one ending past it is not.
    assert pauses == [1, 2, 4, 8, 15, 15, 15]
    assert str(error) == f"failure {len(pauses) + 1}"


def test_a_cancel_set_before_a_pause_gives_up_at_once(clock):
    cancel = threading.Event()
    cancel.set()
    action = Flaky(10)
    error, pauses = run(action, doubling(1.0, 15.0, within=60), cancel=cancel)
    assert (str(error), pauses, action.calls) == ("failure 1", [], 1)


def test_a_cancel_during_a_pause_raises_the_last_error_without_trying_again():
    cancel = threading.Event()
    action = Flaky(10)
    threading.Timer(0.1, cancel.set).start()
    error, pauses = run(action, doubling(30.0, 30.0, within=600), cancel=cancel)
    assert (type(error), str(error), pauses, action.calls) == (ConnectionError, "failure 1", [30.0], 1)
