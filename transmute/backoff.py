"""Trying a call again while what it needs is briefly away: one helper over tenacity for every such loop."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """When to try again: the pause before each next try (a tenacity wait), and when to give up instead."""

    wait: Callable[[RetryCallState], float]
    tries: int | None = None
    """Give up after this many tries."""
    within: float | None = None
    """Give up when the next pause would end more than this many seconds after the first try began."""


@functools.cache  # a handful of schedules, used on the create route's path
def after_pauses(pauses: tuple[float, ...]) -> Backoff:
    """Try again after each pause in turn; give up once they are used."""

    def wait(state: RetryCallState) -> float:
        return pauses[state.attempt_number - 1] if state.attempt_number <= len(pauses) else 0.0

    return Backoff(wait=wait, tries=len(pauses) + 1)


def doubling(first: float, longest: float, *, within: float) -> Backoff:
    """Pauses from `first` seconds, doubling up to `longest`, for up to `within` seconds in all."""
    return Backoff(wait=wait_exponential(multiplier=first, max=longest), within=within)


class _Cancelled(Exception):
    """The pause before the next try was cut short."""


def call_with_backoff(
    action: Callable[[], T],
    *,
    errors: type[BaseException] | tuple[type[BaseException], ...],
    backoff: Backoff,
    on_retry: Callable[[BaseException, float], None],
    cancel: threading.Event | None = None,
) -> T:
    """Call `action`; when it raises one of `errors`, tell `on_retry` (the error and the coming pause), wait,
    and try again until `backoff` gives up, then raise the last error. Other errors are raised at once.

    A set `cancel` gives up at once, also in the middle of a pause."""
    started = time.monotonic()
    try:
        return action()  # most calls succeed at once: they skip tenacity's machinery (~15 µs a call)
    except errors as error:
        return _try_again(action, error, started, errors=errors, backoff=backoff, on_retry=on_retry, cancel=cancel)


def _try_again(action: Callable[[], T], error: BaseException, started: float, *,
               errors: type[BaseException] | tuple[type[BaseException], ...], backoff: Backoff,
               on_retry: Callable[[BaseException, float], None], cancel: threading.Event | None) -> T:
    """The rest of `call_with_backoff` after its first try failed with `error`: tenacity takes that failure
    as its own first try."""
    last = [error]
    replay = [error]

    def first_failure_then_action() -> T:
        if replay:
            raise replay.pop()
        return action()

    def give_up(state: RetryCallState) -> bool:
        if cancel is not None and cancel.is_set():
            return True
        if backoff.tries is not None and state.attempt_number >= backoff.tries:
            return True
        return backoff.within is not None and time.monotonic() - started + state.upcoming_sleep > backoff.within

    def before_sleep(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        if failure is not None:
            last[0] = failure
            on_retry(failure, state.upcoming_sleep)

    def sleep(seconds: float) -> None:
        if cancel is None:
            time.sleep(seconds)
        elif cancel.wait(seconds):
            raise _Cancelled

    retrying = Retrying(retry=retry_if_exception_type(errors), wait=backoff.wait, stop=give_up, sleep=sleep,
                        before_sleep=before_sleep, reraise=True)
    try:
        return retrying(first_failure_then_action)
    except _Cancelled:
        raise last[0] from None
