"""ffmpeg's stderr, told as one sentence a person can act on (ffmpeg's stderr is never shown whole)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from transmute.media.inputs import not_a_container

_KNOWN_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), message) for pattern, message in (
        (r"matches no streams|does not contain any stream|no video stream|Output file .* does not contain",
         "The file has no video stream."),
        (r"moov atom not found",
         "The file is an incomplete or damaged MP4/MOV (ffmpeg: moov atom not found); upload the whole file."),
        (r"Invalid data found when processing input|could not find codec parameters|"
         r"End of file|Unknown input format",
         "The file is not a video transmute can read (ffmpeg: invalid data found when processing input)."),
        (r"No such file or directory", "The input file does not exist (ffmpeg: no such file or directory)."),
        (r"Permission denied", "ffmpeg could not open a file (permission denied); check the file's permissions."),
        (r"No space left on device",
         "There is no space left on the disk for the conversion; free some space and try again."),
        (r"Decoder \(codec (\S+)\) not found|Unknown decoder|Unsupported codec|codec not currently supported"
         r"|Encoder .*not found|Unknown encoder|Could not find tag for codec",
         "The video uses a codec transmute's ffmpeg cannot handle ({detail})."),
        (r"Protocol '.*' not on whitelist|Protocol not found",
         "Only local files can be converted (ffmpeg refused a non-file protocol)."),
        (r"Cannot allocate memory|Out of memory",
         "ffmpeg ran out of memory; try a smaller width, a lower fps or a shorter span."),
    )
)
_NOISE = re.compile(r"^(Conversion failed!?|Error (while|opening|initializing).*|Exiting normally.*|"
                    r"To ignore this, add a trailing.*|Invalid argument|\s*)$", re.IGNORECASE)
_PREFIX = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")


def _clean(line: str) -> str:
    line = _PREFIX.sub("", line.strip())
    line = re.sub(r"^(file:)?\S*[/\\]\S*:\s+", "", line)  # "file:/tmp/x/in.mp4: Invalid data..." -> message
    return line.strip()


_NOT_WHITELISTED = re.compile(r"^\[(\w+) @ 0x[0-9a-f]+\]\s*Format not on whitelist")


def explain_ffmpeg_error(stderr_lines: Sequence[str], *, reading: bool = False) -> str:
    """One human sentence for a failed ffmpeg/ffprobe run, from the tail of its stderr."""
    for line in stderr_lines:
        refused = _NOT_WHITELISTED.match(line.strip())
        if refused:
            return not_a_container(refused.group(1))
    lines = [_clean(line) for line in stderr_lines if line.strip()]
    for pattern, message in _KNOWN_ERRORS:
        for line in lines:
            found = pattern.search(line)
            if found:
                return message.format(detail=(found.group(1) if found.groups() and found.group(1) else line)[:120])
    meaningful = [line for line in lines if not _NOISE.match(line)]
    detail = (meaningful or lines or ["no error message"])[-1].rstrip(".")
    if len(detail) > 200:
        detail = detail[:197] + "..."
    if reading:
        return f"The file is not a video transmute can read (ffmpeg: {detail})."
    return f"ffmpeg could not convert the video ({detail})."
