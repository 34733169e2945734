"""What ffmpeg may read: one local regular file, opened as `file:`, with a video container's demuxer only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from transmute.core.errors import MediaError

ALLOWED_DEMUXERS: tuple[str, ...] = (
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2",  # QuickTime / MP4 family
    "matroska", "webm",
    "avi",
    "flv",
    "mpegts",
    "mpeg",  # MPEG program stream (.mpg, .vob)
    "ogg",
    "asf",  # .wmv, .asf
    "gif",
    "mxf",
)
"""The only ffmpeg demuxers a source may be read with: video containers that open no other file or URL.

Playlists and lists (hls, concat, sdp, rtsp...), image sequences (image2, *_pipe) and raw streams are
refused by ffmpeg itself (`-format_whitelist`), before their demuxer reads a line."""

INPUT_OPTIONS: dict[str, str] = {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_DEMUXERS)}
"""The ffmpeg input options every source is opened with, besides the decoder's picture cap
(see transmute.media.limits.input_options)."""

_LISTS = {
    "hls": "an HLS playlist (m3u8)",
    "concat": "an ffconcat list of files",
    "sdp": "an SDP session description",
    "image2": "a still image or an image sequence",
    "tty": "a text file",
}
_AUDIO_DEMUXERS = frozenset({"wav", "w64", "mp3", "aac", "flac", "aiff", "amr", "ac3", "eac3", "ape", "wv", "tta",
                             "au", "caf", "mpc", "mpc8", "dts", "truehd", "loas", "voc", "xwma", "dsf"})


def local_input(path: str | os.PathLike[str]) -> str:
    """The ffmpeg input URL for a local file (`file:/abs/path`); MediaError for anything else."""
    text = os.fspath(path)
    if not text or text == "-" or "://" in text:
        raise MediaError(f"Only local files can be converted; {text!r} is not a local file path.")
    return "file:" + os.path.abspath(text)


def seek_options(start: float) -> dict[str, str]:
    """The ffmpeg input options that start reading `start` seconds in: none at 0. A file cut without re-encoding
    may begin with frames that need a keyframe before them; ffmpeg cannot seek in it, even to 0 ("could not seek
    to position 0.000"), and then decodes nothing, where reading it from its start decodes from its first
    keyframe on."""
    return {"ss": f"{start:.6f}"} if start > 0 else {}


def check_input_file(path: str | os.PathLike[str]) -> Path:
    """The path if it is one local, non-empty regular file; MediaError otherwise.

    Symbolic links, devices, fifos and sockets are refused: ffmpeg must read exactly the bytes of one file.
    """
    local_input(path)
    file = Path(path)
    try:
        info = os.lstat(file)
    except FileNotFoundError:
        raise MediaError(f"The file {os.fspath(path)!r} does not exist.") from None
    except OSError as exc:
        raise MediaError(f"The file {os.fspath(path)!r} cannot be read ({exc.strerror}).") from None
    if stat.S_ISLNK(info.st_mode):
        raise MediaError(f"{os.fspath(path)!r} is a symbolic link; transmute reads only regular files "
                         "(pass the file it points to).")
    if not stat.S_ISREG(info.st_mode):
        raise MediaError(f"{os.fspath(path)!r} is not a regular file (a folder, device, fifo or socket); "
                         "transmute reads only regular files.")
    if info.st_size == 0:
        raise MediaError("The file is empty; it is not a video transmute can read.")
    return file


def not_a_container(demuxer: str) -> str:
    """The message for a file ffmpeg would read with a demuxer outside ALLOWED_DEMUXERS."""
    names = set(demuxer.split(","))
    if names & _AUDIO_DEMUXERS:
        return "The file has no video stream."
    kind = next((_LISTS[name] for name in names if name in _LISTS), None)
    if kind:
        kind += "; playlists and lists of files are never followed"
    elif any(name.endswith("_pipe") for name in names):
        kind = "a still image"
    else:
        kind = f"a {demuxer} file, not a video container"
    return (f"The file is not a video transmute can read (ffmpeg: it is {kind}); upload a video file "
            "(MP4, MOV, MKV, WebM, AVI, FLV, MPEG-TS, MPEG, Ogg, WMV, GIF or MXF).")
