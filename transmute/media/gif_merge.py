"""Joining GIFs into one, block by block: the frames of each in turn, each keeping its palette.

The frames of each GIF follow those of the one before, their compressed data copied as they are. The palette of
the GIF with the most frames becomes the merged one's global palette; every other GIF's goes with each of its
frames as a local one (768 bytes a frame). The first GIF's loop extension says how often the merged one plays.
Nothing is decoded or compressed again: a merge takes a few milliseconds, where `gifsicle --merge`, which
compresses every frame again, took 0.2-0.4 s for a GIF of 1 MB. The GIFs are read as GIF89a lays them out
(https://www.w3.org/Graphics/GIF/spec-gif89a.txt).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from transmute.core.errors import MediaError

HEADER_BYTES = 13
"""The signature and version (6 bytes) and the logical screen descriptor (7)."""
SCREEN_PACKED = 10
"""Offset of the logical screen descriptor's packed byte (after the signature, width and height)."""
IMAGE_DESCRIPTOR_BYTES = 10
IMAGE_PACKED = 9
"""Offset of an image descriptor's packed byte (after the separator, position and size)."""
EXTENSION, IMAGE, TRAILER = 0x21, 0x2C, 0x3B
APPLICATION_LABEL = 0xFF
COLOUR_TABLE_FLAG = 0x80
COLOUR_TABLE_SIZE = 0x07
"""Bits of a descriptor's packed byte: whether a colour table follows, and its size (3 * 2 ** (bits + 1) bytes)."""


def merge_gif_files(sources: list[Path], output: Path) -> None:
    """Write `output` with the frames of the GIFs `sources` in turn (see the module's docstring); no `output` is
    left when one of them cannot be read as a GIF. One GIF is in memory at a time: each is read once to count its
    frames, then again to be copied."""
    screens, frame_counts = [], []
    for source in sources:
        gif = _Gif.read(Path(source))
        screens.append(gif.data[:HEADER_BYTES] + gif.palette)
        frame_counts.append(sum(kind == "image" for kind, _, _ in gif.blocks))
    shared = frame_counts.index(max(frame_counts))
    try:
        with Path(output).open("wb") as merged:
            # the first GIF's signature and size, then the shared GIF's palette
            merged.write(screens[0][:SCREEN_PACKED] + screens[shared][SCREEN_PACKED:])
            for number, source in enumerate(sources):
                gif = _Gif.read(Path(source))
                for kind, start, end in gif.blocks:
                    as_it_is = {"extension": True, "loop": number == 0, "image": number == shared}[kind]
                    if as_it_is:
                        merged.write(gif.data[start:end])
                    elif kind == "image":
                        merged.write(gif.with_local_palette(start, end))
            merged.write(bytes([TRAILER]))
    except BaseException:
        Path(output).unlink(missing_ok=True)
        raise


@dataclass
class _Gif:
    """One GIF's bytes, its global palette and its blocks (see _blocks)."""

    source: Path
    data: bytes
    palette: bytes
    blocks: list[tuple[str, int, int]]

    @classmethod
    def read(cls, source: Path) -> _Gif:
        data = source.read_bytes()
        table_end = _global_table_end(data, source)
        return cls(source, data, data[HEADER_BYTES:table_end], list(_blocks(data, table_end, source)))

    def with_local_palette(self, start: int, end: int) -> bytes:
        """The image block data[start:end], given the GIF's global palette as its own (unless it has one)."""
        packed = self.data[start + IMAGE_PACKED]
        if packed & COLOUR_TABLE_FLAG:
            return self.data[start:end]
        if not self.palette:
            raise MediaError(f"{self.source.name} has a frame with no palette: it cannot be merged.")
        local = (packed & ~COLOUR_TABLE_SIZE) | COLOUR_TABLE_FLAG | (self.data[SCREEN_PACKED] & COLOUR_TABLE_SIZE)
        return (self.data[start:start + IMAGE_PACKED] + bytes([local]) + self.palette
                + self.data[start + IMAGE_DESCRIPTOR_BYTES:end])


def _global_table_end(data: bytes, source: Path) -> int:
    if len(data) < HEADER_BYTES or data[:6] not in (b"GIF87a", b"GIF89a"):
        raise MediaError(f"{Path(source).name} is not a GIF: it cannot be merged.")
    packed = data[SCREEN_PACKED]
    return HEADER_BYTES + (_table_bytes(packed) if packed & COLOUR_TABLE_FLAG else 0)


def _table_bytes(packed: int) -> int:
    return 3 * 2 ** ((packed & COLOUR_TABLE_SIZE) + 1)


def _blocks(data: bytes, position: int, source: Path) -> Iterator[tuple[str, int, int]]:
    """Each block after the header as (kind, start, end): "image" (descriptor, colour table, data), "loop" (the
    NETSCAPE2.0 application extension) or "extension" (any other); up to the trailer."""
    try:
        while data[position] != TRAILER:
            start = position
            if data[position] == EXTENSION:
                label = data[position + 1]
                position = _after_sub_blocks(data, position + 2)
                is_loop = label == APPLICATION_LABEL and data[start + 3:start + 14] == b"NETSCAPE2.0"
                yield ("loop" if is_loop else "extension"), start, position
            elif data[position] == IMAGE:
                packed = data[position + IMAGE_PACKED]
                position += IMAGE_DESCRIPTOR_BYTES + (_table_bytes(packed) if packed & COLOUR_TABLE_FLAG else 0)
                position = _after_sub_blocks(data, position + 1)  # after the LZW minimum code size
                yield "image", start, position
            else:
                raise IndexError
    except IndexError:
        raise MediaError(f"{Path(source).name} is not a whole GIF: it cannot be merged.") from None


def _after_sub_blocks(data: bytes, position: int) -> int:
    """The position after the data sub-blocks starting at `position` (each a length byte, then that many bytes;
    a length of 0 ends them)."""
    while data[position]:
        position += data[position] + 1
    return position + 1
