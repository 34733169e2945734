"""The convert actor's retry policy, declared as Dramatiq actor options: how often and how soon a conversion
whose attempt raised is tried again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dramatiq.middleware import CurrentMessage

MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 30_000


@dataclass(frozen=True)
class ConversionRetries:
    """Up to `max_retries` more attempts after one that raised (storage or broker trouble, a bug), 1 s of
    back-off doubling up to 30 s. Errors the input is to blame for never reach Dramatiq: the actor fails the
    task at once."""

    max_retries: int

    def retry_when(self, retries: int, exc: BaseException) -> bool:
        """Dramatiq's question once an attempt raised, `retries` attempts after the first: try again?"""
        return retries < self.max_retries

    def actor_options(self) -> dict[str, Any]:
        return {"max_retries": self.max_retries, "min_backoff": MIN_BACKOFF_MS, "max_backoff": MAX_BACKOFF_MS,
                "retry_when": self.retry_when}

    def attempt(self) -> int:
        """Which attempt of its message the current one is, from 1; called outside a Dramatiq worker, the last.

        Dramatiq counts them in the message (it tells an actor nothing else); the actor needs it to fail the
        task itself on the last attempt, since a message Dramatiq fails would go to the dead-letter queue."""
        current = CurrentMessage.get_current_message()
        return (current.options.get("retries", 0) if current else self.max_retries) + 1

    def will_retry(self, attempt: int, exc: BaseException) -> bool:
        """Whether Dramatiq tries again after attempt `attempt` raises `exc`."""
        return self.retry_when(attempt - 1, exc)
