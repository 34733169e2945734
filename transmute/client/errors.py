"""The one error the client raises for whatever the API (or the way to it) refuses."""

from __future__ import annotations

from typing import Any

from transmute.core import errors


class TransmuteError(errors.TransmuteError):
    """An API error: its HTTP status code (None when no answer came), its message and the body's other fields."""

    def __init__(self, status_code: int | None, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.details: dict[str, Any] = details or {}

    def __str__(self) -> str:
        return self.message if self.status_code is None else f"{self.status_code}: {self.message}"

    def __repr__(self) -> str:
        return f"TransmuteError({self.status_code!r}, {self.message!r}, {self.details!r})"


class WaitTimeout(TransmuteError, TimeoutError):
    """A task did not finish within the time `wait` was given."""

    def __init__(self, task_id: str, seconds: float, last: Any = None) -> None:
        super().__init__(None, f"Task {task_id} did not finish within {seconds:g} s.", {"task_id": task_id})
        self.last = last
        """The last status seen (a StatusResponse), if any."""
