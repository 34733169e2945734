"""What in ffmpeg's stderr must stop a run although ffmpeg would go on: a picture too large, memory refused."""

from __future__ import annotations

import re
import signal

from transmute.core.formats import ConversionLimits
from transmute.media.limits import frames_too_large, out_of_memory

_TOO_LARGE = re.compile(r"Picture size (\d+x\d+) exceeds specified max pixel count")
"""The decoder met a picture past `max_pixels` (it then drops the frame and goes on: we stop the run)."""
_ALLOCATION_FAILED = re.compile(r"Cannot allocate memory|Out of memory|Unable to allocate|failed to allocate|"
                                r"get_buffer\(\) failed|pthread_create|Resource temporarily unavailable|"
                                r"failed to map segment|error while loading shared libraries",
                                re.IGNORECASE)
"""What ffmpeg logs when an allocation fails under the address-space ceiling (decoders then drop frames)."""
_INVALID_PICTURE = re.compile(r"image parameters invalid|Invalid (image|picture) size|Invalid dimensions",
                              re.IGNORECASE)
"""A get_buffer failure on a damaged or refused picture size, not on memory."""
_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGKILL})
"""How a process dies when an allocation it does not check fails under RLIMIT_AS."""


class StderrVerdict:
    """Watches ffmpeg's stderr line by line for what must stop the run although ffmpeg would go on (it skips
    the frames it cannot decode and may exit 0): a picture past `max_pixels`, an allocation refused under
    the memory ceiling. `message` is set once, by the first such line."""

    def __init__(self, limits: ConversionLimits) -> None:
        self.limits = limits
        self.message: str | None = None
        self._invalid_picture = False

    def read(self, line: str) -> None:
        if self.message is not None:
            return
        too_large = _TOO_LARGE.search(line)
        if too_large:
            self.message = frames_too_large(too_large.group(1), self.limits)
        elif _INVALID_PICTURE.search(line):
            self._invalid_picture = True
        elif (self.limits.max_conversion_memory_mb > 0 and not self._invalid_picture
              and _ALLOCATION_FAILED.search(line)):
            self.message = out_of_memory(self.limits)

    def after_exit(self, returncode: int) -> str | None:
        """The message for a run that ended: a line seen, or a crash under the memory ceiling."""
        if self.message is None and returncode < 0 and -returncode in _CRASH_SIGNALS \
                and self.limits.max_conversion_memory_mb > 0:
            self.message = out_of_memory(self.limits)
        return self.message
