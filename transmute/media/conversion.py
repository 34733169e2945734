"""Convert one local file: validate, probe, pick the format's plugin, run it. Shared by CLI and worker."""

from __future__ import annotations

import threading
from pathlib import Path

from transmute.core.formats import ConversionJob, OutputFormat, ProgressCallback
from transmute.core.options import FormatOptions
from transmute.core.plugins import get_format
from transmute.media.ffmpeg import check_input_file, collecting_warnings, limits_applied, probe
from transmute.settings import LimitsConfig


def convert_file(
    input_path: Path,
    output_path: Path,
    params: FormatOptions,
    *,
    work_dir: Path,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    limits: LimitsConfig | None = None,
    warnings: list[str] | None = None,
) -> OutputFormat:
    """Convert `input_path` to `output_path` as `params` (the options of the format they name) say; return
    the format used.

    `limits` (default: the environment's) bound the source and the output; the probe and the plugin check
    them before ffmpeg decodes a frame. `warnings`, when given, receives what the conversion noticed but
    survived (one sentence each: a source shorter than its header says...). Raises UnknownFormat,
    MediaError (and its timeout and cancel subclasses) with actionable messages.
    """
    output_format = get_format(params.format)
    with limits_applied(limits), collecting_warnings() as found:
        check_input_file(input_path)
        media = probe(input_path)
        output_format.convert(
            ConversionJob(
                input_path=input_path,
                output_path=output_path,
                params=params,
                media=media,
                progress=progress or (lambda percent: None),
                cancel=cancel or threading.Event(),
                timeout=timeout,
                work_dir=work_dir,
            )
        )
    if warnings is not None:
        warnings.extend(found)
    return output_format
