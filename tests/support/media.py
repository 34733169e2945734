"""Test clips made with ffmpeg's lavfi sources (nothing binary is committed), and the clip sets of the fixtures.

Small (640x480 or less, seconds long) so the suite stays fast on two cores.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
"""The encoding of every test clip: fast to make, decodable everywhere."""


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly with `args`, failing the test when it fails."""
    subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", *args], check=True)


def make_clip(path: Path, lavfi: str) -> Path:
    """An H.264 clip at `path` from the lavfi source `lavfi` (e.g. "testsrc2=size=160x120:rate=10:duration=2")."""
    ffmpeg("-f", "lavfi", "-i", lavfi, *X264, str(path))
    return path


def make_truncated(folder: Path) -> Path:
    """`truncated.mp4` in `folder`: a 320x240 clip whose index (up front) says 4 s but whose bytes stop at 40 %
    (about 1.5 s), as after an interrupted copy; `whole.mp4` beside it is the clip before the cut."""
    whole, truncated = folder / "whole.mp4", folder / "truncated.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=4", *X264, "-movflags", "+faststart", str(whole))
    data = whole.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.4)])
    return truncated


def make_media_clips(folder: Path) -> dict[str, Path]:
    """Named inputs: `video` (320x240, 3 s, 30 fps, with sound), `ramp` (64x48, 2 s, 10 fps, black
    brightening to white), `small` (160x120, 1 s), `audio` (sound only), `text` (not media), `empty`."""
    made = {name: folder / filename for name, filename in {
        "video": "testsrc2.mp4", "ramp": "ramp.mp4", "small": "small.mp4",
        "audio": "sine.wav", "text": "notes.txt", "empty": "empty.mp4"}.items()}
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3", "-f", "lavfi",
           "-i", "sine=frequency=440:duration=3", *X264, "-c:a", "aac", "-shortest", str(made["video"]))
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x48:r=10:d=2,format=gray,geq=lum='min(250,T*120)'",
           *X264, "-qp", "0", str(made["ramp"]))
    make_clip(made["small"], "testsrc2=size=160x120:rate=15:duration=1")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(made["audio"]))
    made["text"].write_text("This is a shopping list, not a video.\n")
    made["empty"].write_bytes(b"")
    return made


def make_cluster_clips(folder: Path) -> dict[str, Path]:
    """`one` (160x120, 1 s), `two` (160x120, 2 s), `long` (320x240, 20 s: seconds of work to convert)."""
    return {
        "one": make_clip(folder / "one.mp4", "testsrc2=size=160x120:rate=10:duration=1"),
        "two": make_clip(folder / "two.mp4", "testsrc2=size=160x120:rate=10:duration=2"),
        "long": make_clip(folder / "long.mp4", "testsrc2=size=320x240:rate=25:duration=20"),
    }


@dataclass(frozen=True)
class Media:
    """The clips the gateway tests upload."""

    clip: Path
    """160x120, 2 s, 10 fps: converts in well under a second."""
    longer: Path
    """320x240, 6 s, 30 fps, noise all over: a conversion long enough to watch its progress move (1-2 s with
    high_quality on a fast machine; without the noise, under half a second)."""
    text: Path
    """A text file with a video's name: not media."""

    @classmethod
    def make(cls, folder: Path) -> Media:
        """Make the clips in `folder`."""
        text = folder / "notes.mp4"
        text.write_text("This is a shopping list, not a video.\n")
        return cls(clip=make_clip(folder / "clip.mp4", "testsrc2=size=160x120:rate=10:duration=2"),
                   longer=make_clip(folder / "longer.mp4",
                                    "testsrc2=size=320x240:rate=30:duration=6,noise=alls=30:allf=t"),
                   text=text)


@dataclass(frozen=True)
class E2EMedia:
    """The clips the tests of a real `transmute serve` upload or serve."""

    folder: Path
    video: Path
    """video.mp4, the spec's file name: 160x120, 2 s."""
    long: Path
    """640x480, 10 s, 30 fps: a conversion of several seconds at full size and high quality."""

    @classmethod
    def make(cls, folder: Path) -> E2EMedia:
        """Make the clips in `folder`."""
        return cls(folder=folder, video=make_clip(folder / "video.mp4", "testsrc2=size=160x120:rate=10:duration=2"),
                   long=make_clip(folder / "long.mp4", "testsrc2=size=640x480:rate=30:duration=10"))
