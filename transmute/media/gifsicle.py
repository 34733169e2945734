"""gifsicle, run on the GIFs transmute wrote: lossy LZW compression (`--lossy`) and palettes smaller than the
4 entries transmute's are made with (`--colors`), under the same child-process safeguards as ffmpeg (own session,
dying with its parent, the memory ceiling), with cancel and timeout.

gifsicle (Debian package `gifsicle`, 1.92 or newer for `--lossy`) is the well-kept tool for these; ffmpeg has
none of them (its GIF encoder writes a frame with a palette of its own whole, without transparent pixels). It
rewrites the file and keeps the NETSCAPE2.0 loop count.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

from transmute.core.errors import ConversionCancelled, ConversionTimeout, MediaError
from transmute.core.formats import ConversionLimits
from transmute.media.process import child_options, kill_group

GIFSICLE = "gifsicle"
PACKAGE = "gifsicle"
POLL_INTERVAL = 0.1
"""Seconds between two checks of cancel and timeout while gifsicle runs."""


def gifsicle_installed() -> bool:
    """Whether the gifsicle program is on the PATH."""
    return shutil.which(GIFSICLE) is not None


def missing_gifsicle(needed_for: str) -> MediaError:
    """The error for a conversion that needs gifsicle where it is not installed."""
    return MediaError(f"{needed_for} needs gifsicle, which is not installed on this server; install the package "
                      f"{PACKAGE!r} (apt-get install {PACKAGE}).")


def run_gifsicle(source: Path, output: Path, *, limits: ConversionLimits, lossy: int = 0, colors: int | None = None,
                 cancel: threading.Event | None = None, timeout: float | None = None,
                 needed_for: str = "This conversion") -> None:
    """Write `output` from the GIF `source` with `--lossy=lossy` (0: none) and `--colors=colors` (None: keep the
    palette; gifsicle still drops unused colour-table entries). MediaError when it fails or is missing,
    ConversionCancelled / ConversionTimeout (gifsicle's whole group killed) when asked to stop."""
    # -O2: ffmpeg marks the pixels a frame leaves unchanged transparent, and gifsicle re-optimises every frame
    # it rewrites; at -O1 that transparency is lost and a still-background clip (a screen recording, a fixed
    # camera) came out 2-6x larger with --lossy than without. -O3 gave 1-3 % less for 3x the time.
    arguments = [GIFSICLE, "--no-warnings", "-O2"]
    if lossy:
        arguments.append(f"--lossy={lossy}")
    if colors is not None:
        arguments += ["--colors", str(colors)]
    # Absolute paths: a name starting with "-" would read as an option.
    arguments += ["--output", str(Path(output).absolute()), str(Path(source).absolute())]
    _run(arguments, output, limits=limits, cancel=cancel, timeout=timeout, needed_for=needed_for,
         doing="compress the GIF")


def _run(arguments: list[str], output: Path, *, limits: ConversionLimits, cancel: threading.Event | None,
         timeout: float | None, needed_for: str, doing: str) -> None:
    if cancel is not None and cancel.is_set():
        raise ConversionCancelled("The conversion was cancelled.")
    try:
        process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, **child_options(limits.max_conversion_memory_mb))
    except FileNotFoundError:
        raise missing_gifsicle(needed_for) from None
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            try:
                _, stderr = process.communicate(timeout=POLL_INTERVAL)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancel is not None and cancel.is_set():
                raise ConversionCancelled("The conversion was cancelled.")
            if deadline is not None and time.monotonic() >= deadline:
                raise ConversionTimeout(f"The conversion took longer than the {timeout:g} s allowed and was "
                                        "stopped; try a shorter span, a smaller width or a lower fps.")
    except BaseException:
        kill_group(process)
        Path(output).unlink(missing_ok=True)
        raise
    if process.returncode != 0:
        Path(output).unlink(missing_ok=True)
        said = stderr.decode("utf-8", "replace").strip().splitlines()
        detail = said[-1][:300] if said else f"exit status {process.returncode}"
        if "out of memory" in detail.lower() or process.returncode < 0:
            detail += (f" (it may have met the {limits.max_conversion_memory_mb:g} MB memory ceiling, "
                       "TRANSMUTE_MAX_CONVERSION_MEMORY_MB)")
        raise MediaError(f"gifsicle could not {doing}: {detail}.")
