"""A conversion that fails, is cancelled or times out leaves no partial output behind."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from transmute.core.errors import ConversionTimeout
from transmute.core.formats import ConversionJob


@contextlib.contextmanager
def output_removed_on_failure(job: ConversionJob, advice: str) -> Iterator[None]:
    """Within this block, any failure removes `job.output_path`; a timeout is re-raised with `advice` (what to
    ask for instead: "try a shorter span") after the time allowed."""
    try:
        yield
    except ConversionTimeout:
        Path(job.output_path).unlink(missing_ok=True)
        raise ConversionTimeout(f"The conversion took longer than the {job.timeout:g} s allowed and was stopped; "
                                f"{advice}.") from None
    except BaseException:
        Path(job.output_path).unlink(missing_ok=True)
        raise
