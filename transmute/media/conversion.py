"""Convert one local file: validate, probe, pick the format's plugin, run it. Shared by CLI and worker."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, NamedTuple

from transmute.core.formats import ConversionJob, ConversionLimits, OutputFormat, ProgressCallback, checked_metadata
from transmute.core.models import MediaInfo
from transmute.core.options import FormatOptions
from transmute.core.plugins import get_format
from transmute.media.inputs import check_input_file
from transmute.media.limits import check_source
from transmute.media.probe import probe
from transmute.media.user_warnings import collecting_warnings


class Converted(NamedTuple):
    """What a conversion wrote, beside the file."""

    output_format: OutputFormat
    warnings: list[str]
    """What the conversion noticed but survived, one sentence each (a source shorter than its header says...)."""
    metadata: dict[str, Any]
    """What the plugin told about the output (ConversionJob.metadata), checked JSON-ready."""
    output_media: MediaInfo | None
    """The output's picture, frames and length, when the plugin knew them (ConversionJob.output_media)."""


def convert_file(
    input_path: Path,
    output_path: Path,
    params: FormatOptions,
    *,
    limits: ConversionLimits,
    work_dir: Path,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    media: MediaInfo | None = None,
) -> Converted:
    """Convert `input_path` to `output_path` as `params` (the options of the format they name) say.

    `limits` bound the source and the output; the probe and the plugin check them before ffmpeg decodes a
    frame. `media`: the file's description when it was probed already (by the gateway, at create); it is
    checked against `limits` here instead of probing the file again. Raises UnknownFormat, MediaError (and its
    timeout and cancel subclasses) with actionable messages.
    """
    output_format = get_format(params.format)
    with collecting_warnings() as found:
        check_input_file(input_path)
        if media is None:
            media = probe(input_path, limits=limits)
        else:
            check_source(media, limits)
        job = ConversionJob(
            input_path=input_path,
            output_path=output_path,
            params=params,
            media=media,
            limits=limits,
            progress=progress or (lambda percent: None),
            cancel=cancel or threading.Event(),
            timeout=timeout,
            work_dir=work_dir,
        )
        output_format.convert(job)
    return Converted(output_format, list(found), checked_metadata(job.metadata, output_format.name), job.output_media)
