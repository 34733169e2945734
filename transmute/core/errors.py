"""Every error transmute raises on purpose, as one short hierarchy.

Each message is one sentence a person can act on; the API and the CLI show it as it is.
"""

from __future__ import annotations


class TransmuteError(Exception):
    """Base class of every error transmute raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(TransmuteError):
    """A conversion parameter has a value outside what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownFormat(InvalidParameter):
    """No installed plugin provides the requested output format."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(sorted(known)) or "none"
        super().__init__("format", f"'format' must be one of the installed formats ({listed}); got {name!r}.")
        self.name = name


class PluginError(TransmuteError):
    """A plugin is broken: it failed to load or declared something invalid."""


class MediaError(TransmuteError):
    """The input is not a video transmute can read, or ffmpeg could not convert it."""


class ConversionTimeout(MediaError):
    """The conversion ran past its wall-clock limit and was stopped."""


class ConversionCancelled(MediaError):
    """The conversion was asked to stop and did."""


class ConversionStalled(MediaError):
    """The conversion's progress stood still for longer than allowed, and it was stopped."""


class SourceError(TransmuteError):
    """The source of a task (an upload or a URL) could not be fetched or is unacceptable."""


class StorageError(TransmuteError):
    """The object storage could not store or return a file."""


class TaskNotFound(TransmuteError):
    """No task has this id (or the caller may not see it)."""


class TaskNotReady(TransmuteError):
    """The task has no result to serve yet, or it failed."""
