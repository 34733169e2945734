"""Converting a file in the test process the way the CLI and the worker do: parse, probe, pick the plugin."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.gifs import Gif, read_gif
from transmute.core.formats import ConversionJob
from transmute.core.params import parse_params
from transmute.core.plugins import get_format
from transmute.media.probe import probe
from transmute.settings import LimitsConfig


@dataclass
class Converted:
    """A conversion's output and the progress it reported."""

    path: Path
    progress: list[float]

    @property
    def gif(self) -> Gif:
        """The output, read as a GIF."""
        return read_gif(self.path)


def convert(source: Path, output: Path, *, cancel: threading.Event | None = None, timeout: float | None = None,
            on_progress: Callable[[float], None] | None = None, **values: Any) -> Converted:
    """Convert `source` the way the CLI and the worker do: parse, probe, pick the plugin, convert."""
    params = parse_params(values)
    reports: list[float] = []

    def progress(percent: float) -> None:
        reports.append(percent)
        if on_progress is not None:
            on_progress(percent)

    work_dir = output.parent / (output.stem + ".work")
    work_dir.mkdir(exist_ok=True)
    limits = LimitsConfig().for_conversion()
    job = ConversionJob(input_path=source, output_path=output, params=params, media=probe(source, limits=limits),
                        limits=limits, progress=progress, timeout=timeout, work_dir=work_dir)
    if cancel is not None:
        job.cancel = cancel
    get_format(params.format).convert(job)
    return Converted(output, reports)
