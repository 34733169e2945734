"""What the embedded lifecycle tests (cancel, delete, retry, expiry, guards) share: their clips, the parameters
that make a conversion slow, two API keys, and the objects the app's storage holds."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.media import make_clip

SLOW = {"fps": 25, "keep_original_size": "true", "high_quality": "true"}
"""Parameters that make the long clip take seconds to convert (long enough to cancel it while it runs): about 6 s
on a fast machine, where the clip without its noise took 1.3 s, too short for a task to be seen running."""
ALICE, BOB = "alice-key-0123456789abcdef", "bob-key-0123456789abcdef00"


def make_lifecycle_clips(folder: Path) -> dict[str, Path]:
    """A 1 s clip that converts at once, and a 20 s one with noise all over, which takes a while with SLOW (its
    every frame is mapped and compressed anew)."""
    return {"short": make_clip(folder / "short.mp4", "testsrc2=size=96x64:rate=5:duration=1"),
            "long": make_clip(folder / "long.mp4", "testsrc2=size=320x240:rate=25:duration=20,noise=alls=30:allf=t")}


def stored(data_dir: Path, prefix: str = "") -> list[str]:
    """The objects in the embedded app's storage (under `data_dir`) whose keys start with `prefix`, sorted. Read while
    the app works: a folder it removes meanwhile (a finished task's attempt markers) is left out, not an error."""
    root = data_dir / "objects"
    keys = (Path(folder, name).relative_to(root).as_posix() for folder, _, names in os.walk(root) for name in names)
    return sorted(key for key in keys if key.startswith(prefix))
