"""What a format plugin provides: an OutputFormat, and the ConversionJob (with its limits) it is asked to run."""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from transmute.core.models import MediaInfo
from transmute.core.params import ALLOWED, ConversionParams

ProgressCallback = Callable[[float], None]
"""Called with the percentage done, 0 to 100, as the conversion moves."""


class ConversionLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The bounds one conversion is held to, from the operator's settings (`LimitsConfig.for_conversion`).

    The probe and the plugin check them before ffmpeg decodes a frame; ffmpeg runs under them too.
    """

    max_source_width: int
    max_source_height: int
    """Largest picture a source may have (pixels); also the decoder's cap on every picture (`max_pixels`)."""
    max_source_duration: float
    """Longest source, in seconds."""
    max_output_frames: int
    """Most frames one conversion may write (span / speed * fps, doubled for boomerang)."""
    max_reverse_mb: float
    """Memory reverse and boomerang may use: they hold every output frame (width * height * 4 bytes each)."""
    max_conversion_memory_mb: float
    """Address space each ffmpeg and ffprobe child may map; 0 for no ceiling."""
    max_decode_gigapixels: float
    """Most pixels one conversion may decode (source width * height * frames in the span), in billions."""


@dataclass
class ConversionJob:
    """One conversion handed to a format: local input, local output, validated parameters, and its limits."""

    input_path: Path
    output_path: Path
    params: ConversionParams
    media: MediaInfo
    limits: ConversionLimits
    progress: ProgressCallback = lambda percent: None
    cancel: threading.Event = field(default_factory=threading.Event)
    timeout: float | None = None
    """Wall-clock seconds the whole conversion may take; None for no limit."""
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
