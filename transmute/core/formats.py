"""What a format plugin provides: an OutputFormat, and the ConversionJob it is asked to run."""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transmute.core.models import MediaInfo
from transmute.core.params import ALLOWED, ConversionParams

ProgressCallback = Callable[[float], None]
"""Called with the percentage done, 0 to 100, as the conversion moves."""


@dataclass
class ConversionJob:
    """One conversion handed to a format: local input, local output, validated parameters."""

    input_path: Path
    output_path: Path
    params: ConversionParams
    media: MediaInfo
    progress: ProgressCallback = lambda percent: None
    cancel: threading.Event = field(default_factory=threading.Event)
    timeout: float | None = None
    work_dir: Path | None = None
    """A private folder for temporary files, removed by the caller afterwards."""


class OutputFormat(abc.ABC):
    """An output format a plugin provides. Subclass it, fill the attributes, implement `convert`."""

    name: str
    """Unique lower-case name clients ask for (`format=gif`)."""
    extension: str
    """File extension of results, without the dot."""
    mime_type: str
    description: str = ""
    parameters: Mapping[str, Any] = {}
    """The parameters this format honours, each with its default."""

    @abc.abstractmethod
    def convert(self, job: ConversionJob) -> None:
        """Write `job.output_path` from `job.input_path`, report progress, stop when `job.cancel` is set.

        Raise MediaError (or a subclass) with a sentence a person can act on when it cannot.
        """

    def describe(self) -> dict[str, Any]:
        """This format as JSON-ready data, for `transmute formats` and `GET /api/formats/`."""
        return {
            "name": self.name,
            "extension": self.extension,
            "mime_type": self.mime_type,
            "description": self.description,
            "parameters": [
                {"name": name, "default": default, "allowed": ALLOWED.get(name, "")}
                for name, default in self.parameters.items()
            ],
        }
