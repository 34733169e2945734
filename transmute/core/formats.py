"""What a format plugin provides: an OutputFormat (name, extension, MIME type, options, converter), and the
ConversionJob (with its limits) it is asked to run."""

from __future__ import annotations

import abc
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from transmute.core.errors import PluginError
from transmute.core.models import MediaInfo
from transmute.core.options import FormatOptions, VideoOptions, describe_options

ProgressCallback = Callable[[float], None]
"""Called with the percentage done, 0 to 100, as the conversion moves."""
MAX_METADATA_BYTES = 64 * 1024
"""Most a plugin's ConversionJob.metadata may weigh, JSON-encoded: it travels in an event and a task row."""


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
    """One conversion handed to a format: local input, local output, the format's validated options, and its
    limits."""

    input_path: Path
    output_path: Path
    params: Any
    """The conversion's options: an instance of the format's `options` Struct, validated."""
    media: MediaInfo
    limits: ConversionLimits
    progress: ProgressCallback = lambda percent: None
    cancel: threading.Event = field(default_factory=threading.Event)
    timeout: float | None = None
    """Wall-clock seconds the whole conversion may take; None for no limit."""
    work_dir: Path | None = None
    """A private folder for temporary files, removed by the caller afterwards."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """What the plugin tells about its output beyond the file (a sprite's tile times...): JSON-ready values
    (str, int, float, bool, None, lists and dicts of them), at most MAX_METADATA_BYTES encoded. Filled by
    `convert`; shown with the task's result (`format_metadata`), empty for most formats."""
    output_media: MediaInfo | None = None
    """The output's picture size, frame count and length, when the plugin knows them without reading the file
    back (the GIF writer counts its frames): `transmute convert`'s summary then runs no probe."""


class OutputFormat(abc.ABC):
    """An output format a plugin provides. Subclass it, fill the attributes, implement `convert`."""

    name: str
    """Unique lower-case name clients ask for (`format=gif`)."""
    extension: str
    """File extension of results, without the dot."""
    mime_type: str
    description: str = ""
    """One line: what the format is and what it is good for."""
    options: ClassVar[type[FormatOptions]] = VideoOptions
    """The format's options: a msgspec Struct (ranges, defaults and descriptions in `Meta`), usually
    VideoOptions extended with the format's own; FormatOptions for a format with none."""

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
            "parameters": [msgspec.to_builtins(msgspec.structs.replace(option, default=self.name)
                                               if option.name == "format" else option)
                           for option in describe_options(self.options)],
        }


def checked_metadata(metadata: Any, format_name: str) -> dict[str, Any]:
    """The metadata a plugin filled, as plain JSON values; PluginError naming the format when it is not a dict
    of JSON-ready values or weighs more than MAX_METADATA_BYTES."""
    try:
        if not isinstance(metadata, dict) or not all(isinstance(key, str) for key in metadata):
            raise TypeError("it is not a dict with str keys")
        encoded = msgspec.json.encode(metadata)
        plain = msgspec.json.decode(encoded)
    except (TypeError, ValueError, msgspec.MsgspecError) as error:
        raise PluginError(f"The {format_name} format returned metadata that is not JSON-ready ({error}).") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise PluginError(f"The {format_name} format returned {len(encoded)} bytes of metadata, more than the "
                          f"{MAX_METADATA_BYTES} allowed.")
    return plain


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_EXTENSION = re.compile(r"^[a-z0-9]{1,10}$")
_MIME = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")


def check_format(output_format: Any, plugin: str) -> None:
    """PluginError naming the plugin when what it provides breaks the contract."""
    def broken(what: str) -> PluginError:
        return PluginError(f"The transmute plugin {plugin!r} provides a format that breaks the contract: {what}.")

    if not isinstance(output_format, OutputFormat):
        raise broken(f"{output_format!r} is not an OutputFormat")
    for attribute, pattern in (("name", _NAME), ("extension", _EXTENSION), ("mime_type", _MIME)):
        value = getattr(output_format, attribute, None)
        if not isinstance(value, str) or not pattern.match(value):
            raise broken(f"its {attribute} is {value!r}")
    options = output_format.options
    if not (isinstance(options, type) and issubclass(options, FormatOptions)):
        raise broken(f"the options of {output_format.name!r} are not a FormatOptions Struct")
    try:
        options()
    except Exception as error:
        raise broken(f"the options of {output_format.name!r} have no valid defaults ({error})") from None
